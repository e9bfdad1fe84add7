"""Uploading photos and scans to the hub in resumable chunks, after the records have gone.

For each blob the hub has not confirmed, the device asks which chunks the hub already holds
(``GET /v1/blobs/{sha256}``) and sends only the others (``PUT /v1/blobs/{sha256}/{index}``), each
with a freshly signed ``X-Sanji-Request`` header naming the blob, its size, the chunk and the
chunk's SHA-256. A connection cut half-way therefore costs only the chunks not yet acknowledged.

Blobs never block records: ``node sync`` pushes and pulls first, and a failure here (the hub gone,
a refusal, a damaged local copy) is reported in the round's result and retried next round, never
raised.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

import aiohttp

from node import blobs, hub_answer
from node.station import Station
from protocol.blob import BlobRequest, chunk_count, missing_chunks
from protocol.wire import REQUEST_HEADER, sign_message


@dataclass
class BlobRound:
    complete: int = 0  # blobs the hub now holds whole
    sent_chunks: int = 0  # chunks sent this round
    skipped_chunks: int = 0  # chunks the hub already held (an earlier upload was cut short)
    pending: int = 0  # blobs still not confirmed after the round
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "complete": self.complete,
            "sent_chunks": self.sent_chunks,
            "skipped_chunks": self.skipped_chunks,
            "pending": self.pending,
            "errors": self.errors,
        }


def request_header(st: Station, req: BlobRequest) -> str:
    doc = sign_message(req, signer=st.code, recipient=st.hub_id, signing_key=st.keys.sign)
    return base64.b64encode(doc.frame).decode()


async def _answer(resp: aiohttp.ClientResponse) -> dict[str, object]:
    body = await hub_answer.read_json(resp)  # a small JSON status; at most ERROR_BODY_MAX_BYTES of it
    if resp.status != 200:
        reason = body.get("message") if isinstance(body, dict) else None
        raise ValueError(str(reason or f"HTTP {resp.status} {resp.reason}"))
    return body if isinstance(body, dict) else {}


async def _upload(
    st: Station, session: aiohttp.ClientSession, url: str, sha: str, size: int, rnd: BlobRound, budget: list[int]
) -> bool:
    """Send what the hub lacks of one blob. True when the hub holds it whole afterwards."""
    store = blobs.store_of(st)
    if not store.verify(sha):
        raise ValueError("本机的照片副本缺失或已损坏：请重新拍摄并记录 (the local copy is missing or damaged)")
    base = f"{url}/v1/blobs/{sha}"
    query = BlobRequest("query", sha, size, at_ms=st.clock())
    async with session.get(base, headers={REQUEST_HEADER: request_header(st, query)}) as resp:
        status = await _answer(resp)
    if status.get("complete") is True:
        return True
    held = [i for i in status.get("held", []) if isinstance(i, int)]  # type: ignore[attr-defined]
    todo = missing_chunks(size, held)
    rnd.skipped_chunks += chunk_count(size) - len(todo)
    # Every chunk there but the blob not filed (the hub stopped while assembling): resending the last
    # chunk makes it try again.
    todo = todo or [chunk_count(size) - 1]
    complete = False
    for index in todo:
        if budget[0] == 0:
            return False
        budget[0] -= 1
        data = store.read_chunk(sha, index)
        req = BlobRequest("chunk", sha, size, index, hashlib.sha256(data).hexdigest(), st.clock())
        async with session.put(
            f"{base}/{index}",
            data=data,
            headers={
                REQUEST_HEADER: request_header(st, req),
                "Content-Type": "application/octet-stream",
            },
        ) as resp:
            answer = await _answer(resp)
        rnd.sent_chunks += 1
        complete = answer.get("complete") is True
    return complete


async def upload_pending(st: Station, session: aiohttp.ClientSession, url: str, *, max_chunks: int = -1) -> BlobRound:
    """Upload every pending blob. ``max_chunks`` (tests, throttling) stops after that many chunks."""
    rnd = BlobRound()
    budget = [max_chunks]
    for sha, size in blobs.pending(st):
        try:
            if await _upload(st, session, url, sha, size, rnd, budget):
                blobs.mark_held(st, [sha])
                rnd.complete += 1
        except ValueError as exc:
            rnd.errors.append(f"照片 {sha[:12]}…：{exc}")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            rnd.errors.append(f"连不上区局，照片上传暂停：下次同步时自动续传 ({exc.__class__.__name__})")
            break
        if budget[0] == 0:
            break
    rnd.pending = len(blobs.pending(st))
    return rnd
