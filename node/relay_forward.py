"""The township's side of its round with the hub, for its villages: carry what they left at the relay
(node/relay_queue.py) to the hub, in chain order, and keep the hub's answers for them to collect.

Each village's batches go in pushes of their own (the hub addresses one signed acks document to one
station), and its newest signed pull request goes as the village wrote it: the township never signs
for a village, so the hub authenticates every relayed request as the village's own. Forwarding never
fails the township's own round: what could not go waits for the next one.

The township does sign its own word that it forwarded each request (``X-Sanji-Relay`` with
``X-Sanji-Relay-Proof``, protocol/relay_label.py): the hub names a township in its ``relay_seen`` alerts
only on that proof, so nobody else can get a township blamed by writing its name in a header.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node import hub_answer, hubkeys
from node.relay_queue import DB_NAME, RelayQueue, keep_keys, kept_keys, now_ms
from protocol import relay_label
from protocol.codec import pack, unpack
from protocol.errors import RemoteProtocolError
from protocol.limits import PUSH_BODY_MAX_BYTES, PUSH_MAX_FRAMES, RESPONSE_MAX_BYTES
from protocol.wire import REQUEST_HEADER
from replica.errors import Refused

log = logging.getLogger("sanji.node.relay")
FRAMES_TYPE = "application/vnd.sanji.frames+msgpack"
RELAY_HEADER = relay_label.RELAY_HEADER  # hub/relay_proof.py reads it, with its proof
CLAIM_ROUTE = "/v1/enroll/claim"  # hub/web/enrolment.py: the check `hub import` makes of a claim file


@dataclass(frozen=True)
class Signer:
    """The township's word on what it forwards: its code, its station key, and the hub it forwards to."""

    township: str
    key: Ed25519PrivateKey
    hub_id: str

    def headers(self, route: str, forwarded: bytes, at_ms: int) -> dict[str, str]:
        """The label and its proof, for ``forwarded`` (a push's body, a pull's signed request) on ``route``."""
        proof = relay_label.sign(self.key, self.township, self.hub_id, route, forwarded, at_ms)
        return {RELAY_HEADER: self.township, relay_label.PROOF_HEADER: proof}


@dataclass
class Forwarded:
    batches: int = 0  # village batches the hub answered
    pulls: int = 0  # village pull requests the hub answered with a page
    errors: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)  # villages whose offline enrolment the hub accepted

    def to_dict(self) -> dict[str, object]:
        return {"batches": self.batches, "pulls": self.pulls, "errors": self.errors, "claims": self.claims}

    def notes(self) -> list[str]:
        """What the township's sync output says it carried besides counts: the enrolments accepted."""
        return [f"下辖村 {v} 的接入确认文件已转交区局，区局已确认该村接入" for v in self.claims]


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
    queue: RelayQueue, village: str, session: aiohttp.ClientSession, url: str, signer: Signer, done: Forwarded
) -> None:
    # In order, as the village left them: its pull request is taken before its batches are read, so a
    # request it leaves meanwhile (after batches not read here) waits for the next round. A request
    # carried ahead of a batch left before it would show the hub without that batch, which the village
    # rightly takes as the batch kept back (sync/relay_evidence.py).
    waiting = queue.waiting_pull(village)
    if not await _forward_claim(queue, village, session, url, done):
        return  # the hub did not answer: the claim and all after it go next round, in order
    for chunk in _chunks(queue.waiting_batches(village)):
        if not chunk:
            break
        body = pack([f for _, f in chunk])
        # The path a batch took, signed (the batches verify on their own, whoever carries them).
        proof = signer.headers(relay_label.PUSH_ROUTE, body, now_ms())
        async with session.post(
            f"{url}{relay_label.PUSH_ROUTE}", data=body, headers={"Content-Type": FRAMES_TYPE, **proof}
        ) as resp:
            if resp.status != 200:
                done.errors.append(_refused_words(village, resp.status, await hub_answer.read_json(resp)))
                if not 400 <= resp.status < 500:
                    return  # not taken (the hub busy, say): it and all after it go next round, in order
                # Refused whole (a revoked village, say): the village keeps its batches and hears the
                # hub's reason when it next reaches the hub itself; here it waits until the expiry.
                queue.answered(village, [i for i, _ in chunk], "acks", None, now_ms())
                continue
            answer = await hub_answer.read_body(resp, what="区局对转发批次的应答", cap=RESPONSE_MAX_BYTES)
        queue.answered(village, [i for i, _ in chunk], "acks", answer, now_ms())
        done.batches += len(chunk)
    if waiting is None:
        return
    rid, signed = waiting
    headers = {
        REQUEST_HEADER: base64.b64encode(signed).decode(),
        **signer.headers(relay_label.PULL_ROUTE, signed, now_ms()),
    }
    async with session.get(f"{url}{relay_label.PULL_ROUTE}", headers=headers) as resp:
        if resp.status != 200:
            # A request gone stale while it waited: the village deposits a fresh one next time.
            done.errors.append(
                f"下辖村 {village} 的取数请求区局未应答（pull HTTP {resp.status}），该村下次同步会重新请求"
            )
            queue.answered(village, [rid], "feed", None, now_ms())
            return
        page = await hub_answer.read_body(resp, what="区局为下辖村写的数据页", cap=RESPONSE_MAX_BYTES)
    queue.answered(village, [rid], "feed", page, now_ms())
    done.pulls += 1


async def _forward_claim(
    queue: RelayQueue, village: str, session: aiohttp.ClientSession, url: str, done: Forwarded
) -> bool:
    """A village's claim (offline enrolment), ahead of its batches: the hub pins its keys as `hub import`
    would, or refuses it with the same reason. False when the hub gave no answer (kept for next round)."""
    waiting = queue.waiting_pull(village, "claim")
    if waiting is None:
        return True
    cid, claim = waiting
    async with session.post(
        f"{url}{CLAIM_ROUTE}", data=claim, headers={"Content-Type": "application/octet-stream"}
    ) as resp:
        answer = await hub_answer.read_json(resp)
        if resp.status != 200 and not 400 <= resp.status < 500:
            done.errors.append(f"下辖村 {village} 的接入确认文件区局未应答（HTTP {resp.status}），下次同步再转交")
            return False
    queue.answered(village, [cid], "claim", None, now_ms())  # carried again, it would get the same answer
    if resp.status == 200:
        done.claims.append(village)
        return True
    reason = str(answer.get("message") or answer.get("error") or "") if isinstance(answer, dict) else ""
    done.errors.append(
        f"下辖村 {village} 的接入确认文件被区局拒收（HTTP {resp.status}）：{reason or '区局没有说明原因'}；"
        "该村的批次区局无法核验，请该村联系区局重新登记"
    )
    return True


async def _keys(folder: Path, session: aiohttp.ClientSession, url: str, done: Forwarded) -> None:
    """Keep the hub's key history for the villages: after a rotation they can verify nothing the hub
    sends until they follow it, and a village cut off from the hub has only the relay. The hub answers
    with the whole history when it holds a list newer than ``after``, else with its version alone."""
    kept = kept_keys(folder)
    try:
        version = hubkeys.key_history(unpack(kept)).version if kept else -1
    except (RemoteProtocolError, Refused):
        version = -1
    async with session.get(f"{url}/v1/keys", params={"after": str(version)}) as resp:
        if resp.status != 200:
            if resp.status != 404:  # 404: a hub from before key rotation, nothing to carry
                done.errors.append(f"keys: HTTP {resp.status}")
            return
        cap = hubkeys.ANSWER_MAX_BYTES
        bundle = await hub_answer.read_body(resp, what="区局的密钥记录", cap=cap, hub_document=False)
    try:
        history = hubkeys.key_history(unpack(bundle))
    except (RemoteProtocolError, Refused) as exc:
        done.errors.append(f"keys: {exc}")
        return
    if history.docs:  # the villages check it from the root they pinned; the relay only keeps it
        keep_keys(folder, bundle)


async def forward(folder: Path, signer: Signer, session: aiohttp.ClientSession, url: str) -> Forwarded:
    """One relay round with the hub at ``url``; nothing to do where the township never relayed."""
    done = Forwarded()
    if not (Path(folder) / DB_NAME).exists():
        return done
    queue = RelayQueue(folder, signer.township)
    try:
        queue.expire(now_ms())
        villages = queue.villages_waiting()
        if villages:
            # The key history first: the answers kept after it are signed by a key it names. Asked
            # last, a line that dropped in between left answers under a new key beside an old history,
            # which the villages could not verify and took for the relay's doing (the simulator's
            # seed 5603).
            try:
                await _keys(folder, session, url, done)
            except hub_answer.AnswerTooLarge as exc:
                done.errors.append(f"keys: {exc}")
        for village in villages:  # batches and pull requests alike
            try:
                await _forward_village(queue, village, session, url, signer, done)
            except (hub_answer.AnswerTooLarge, hub_answer.NotAHub) as exc:
                done.errors.append(f"{village}: {exc}")
    finally:
        queue.close()
    if done.batches or done.pulls:
        log.info("已为下辖村转发：上送批次 %d 个，带回数据页 %d 个 (relayed)", done.batches, done.pulls)
    return done


def _refused_words(village: str, status: int, answer: object) -> str:
    """The hub's refusal of a village's forwarded batches, as the township's staff read it (it was a raw
    dict): the hub's own reason, and that nothing is lost (the village keeps its batches)."""
    reason = str(answer.get("message") or answer.get("error") or "") if isinstance(answer, dict) else ""
    return (
        f"下辖村 {village} 的批次被区局拒收（HTTP {status}）：{reason or '区局没有说明原因'}；"
        "批次仍保存在该村，不会丢失，请该村联系区局"
    )
