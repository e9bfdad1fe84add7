"""The township's side of its round with the hub, for its villages: carry what they left at the relay
(node/relay_queue.py) to the hub, in chain order, and keep the hub's answers for them to collect.

Each village's batches go in pushes of their own (the hub addresses one signed acks document to one
station), and its newest signed pull request goes as the village wrote it: the township never signs
for a village, so the hub authenticates every relayed request as the village's own. Forwarding never
fails the township's own round: what could not go waits for the next one.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from node import hub_answer
from node.relay_queue import DB_NAME, RelayQueue, now_ms
from protocol.codec import pack
from protocol.limits import PUSH_BODY_MAX_BYTES, PUSH_MAX_FRAMES, RESPONSE_MAX_BYTES
from protocol.wire import REQUEST_HEADER

log = logging.getLogger("sanji.node.relay")
FRAMES_TYPE = "application/vnd.sanji.frames+msgpack"
RELAY_HEADER = "X-Sanji-Relay"  # hub/web/sync.py reads it


@dataclass
class Forwarded:
    batches: int = 0  # village batches the hub answered
    pulls: int = 0  # village pull requests the hub answered with a page
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"batches": self.batches, "pulls": self.pulls, "errors": self.errors}


def _chunks(batches: list[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
    out: list[list[tuple[int, bytes]]] = [[]]
    size = 0
    for item in batches:
        if out[-1] and (len(out[-1]) >= PUSH_MAX_FRAMES or size + len(item[1]) > PUSH_BODY_MAX_BYTES - 4096):
            out.append([])
            size = 0
        out[-1].append(item)
        size += len(item[1])
    return out


async def _forward_village(
    queue: RelayQueue, village: str, session: aiohttp.ClientSession, url: str, done: Forwarded
) -> None:
    for chunk in _chunks(queue.waiting_batches(village)):
        if not chunk:
            break
        async with session.post(
            f"{url}/v1/sync/push",
            data=pack([f for _, f in chunk]),
            # Only a label for the hub's operator (the path a batch took); the batches verify on their own.
            headers={"Content-Type": FRAMES_TYPE, RELAY_HEADER: queue.township},
        ) as resp:
            if resp.status != 200:
                # Refused whole (a revoked village, say): the village keeps its batches and hears the
                # hub's reason when it next reaches the hub itself; here it waits until the expiry.
                done.errors.append(f"{village}: HTTP {resp.status} {await hub_answer.read_json(resp)}")
                queue.answered(village, [i for i, _ in chunk], "acks", None, now_ms())
                continue
            answer = await hub_answer.read_body(resp, what="区局对转发批次的应答", cap=RESPONSE_MAX_BYTES)
        queue.answered(village, [i for i, _ in chunk], "acks", answer, now_ms())
        done.batches += len(chunk)
    waiting = queue.waiting_pull(village)
    if waiting is None:
        return
    rid, signed = waiting
    headers = {REQUEST_HEADER: base64.b64encode(signed).decode(), RELAY_HEADER: queue.township}
    async with session.get(f"{url}/v1/sync/pull", headers=headers) as resp:
        if resp.status != 200:
            # A request gone stale while it waited: the village deposits a fresh one next time.
            done.errors.append(f"{village}: pull HTTP {resp.status}")
            queue.answered(village, [rid], "feed", None, now_ms())
            return
        page = await hub_answer.read_body(resp, what="区局为下辖村写的数据页", cap=RESPONSE_MAX_BYTES)
    queue.answered(village, [rid], "feed", page, now_ms())
    done.pulls += 1


async def forward(folder: Path, township: str, session: aiohttp.ClientSession, url: str) -> Forwarded:
    """One relay round with the hub at ``url``; nothing to do where the township never relayed."""
    done = Forwarded()
    if not (Path(folder) / DB_NAME).exists():
        return done
    queue = RelayQueue(folder, township)
    try:
        queue.expire(now_ms())
        for village in queue.villages_waiting():  # batches and pull requests alike
            try:
                await _forward_village(queue, village, session, url, done)
            except (hub_answer.AnswerTooLarge, hub_answer.NotAHub) as exc:
                done.errors.append(f"{village}: {exc}")
    finally:
        queue.close()
    if done.batches or done.pulls:
        log.info("relayed for villages: %d batches up, %d pages down", done.batches, done.pulls)
    return done
