"""The hub's photos and scans: which blobs it holds, which uploads are half done, which are missing.

Blob files live under ``HUB/blobs/`` (``replica/blobstore.py``); this module keeps their index in two
tables of its own migration set, so the hub's main schema is untouched:
- ``blobs``: every blob the hub holds whole and verified, with who sent it and how;
- ``blob_uploads``: uploads in progress, with the size the station signed for (the chunks are files).

An upload that receives no chunk for :data:`PARTIAL_RETENTION_DAYS` is abandoned: the nightly job
removes its chunks (:func:`drop_abandoned`), and the station, if it ever comes back, starts over.

Records travel first: a station may upload only a blob that one of its own reports, already at the
hub, names. That keeps the hub from storing anything nobody asked for, and gives a clear refusal
("sync the report first") instead of orphan files. Every chunk is checked against the digest the
station signed for it before it is stored, and the whole blob against its name once complete; a
mismatch is refused as tampering, recorded among the rejections, and nothing of it is kept.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from hub import seal_keys
from protocol.blob import KIND, BlobRequest, BlobsHeld, chunk_count, chunk_span
from protocol.codec import unpack
from protocol.document import open_document
from protocol.errors import MalformedError, RemoteProtocolError
from protocol.limits import BLOB_FILE_LIMITS
from protocol.wire import sign_message
from replica import carried_files
from replica.blobstore import BlobStore
from sync.fold import record_from_wire, values

if TYPE_CHECKING:
    from hub.service import Hub

FILE_LIMITS = BLOB_FILE_LIMITS  # the shared table's (protocol/limits.py); this name stays for its importers
# An upload that received no chunk for this many days is abandoned; the nightly job removes it.
PARTIAL_RETENTION_DAYS = 7
DAY_MS = 86_400_000


class TamperedError(RemoteProtocolError):
    default_status = 422
    default_code = "tampered"


class UnreferencedError(RemoteProtocolError):
    default_status = 403
    default_code = "unreferenced"


def store_of(hub: Hub) -> BlobStore:
    """The hub's blob files. Their index tables exist from the store's open (hub/store/base.py)."""
    return BlobStore(hub.folder / "blobs")


def blobs_of(report: dict[str, object]) -> list[str]:
    """The blobs a report names: its photos, then its signature."""
    photos = report.get("photos")
    out = [p for p in photos if isinstance(p, str)] if isinstance(photos, list) else []
    sig = report.get("signature")
    if isinstance(sig, str) and sig:
        out.append(sig)
    return out


def held(hub: Hub, sha: str) -> bool:
    store = store_of(hub)
    return hub.store.blob_filed(sha) and store.has(sha)


def missing(hub: Hub, shas: list[str]) -> list[str]:
    return [s for s in shas if not held(hub, s)]


def missing_count(hub: Hub) -> int:
    """Blobs named by some report at the hub that the hub does not hold yet."""
    store_of(hub)
    wanted: set[str] = set()
    for state in hub.store.report_states():
        raw = unpack(state)
        assert isinstance(raw, dict)
        wanted.update(blobs_of(values(record_from_wire(raw))))
    have = hub.store.filed_blobs()
    return len(wanted - have)


def referenced_by(hub: Hub, station: str, sha: str) -> bool:
    """Whether a report change from ``station`` that the hub holds names ``sha``."""
    for fields in hub.store.report_fields_from(station):
        raw = unpack(fields)
        if isinstance(raw, dict) and sha in blobs_of(raw):
            return True
    return False


def _require_reference(hub: Hub, station: str, sha: str) -> None:
    if not referenced_by(hub, station, sha):
        raise UnreferencedError(
            f"区局还没有 {station} 提到照片 {sha[:12]}… 的踏勘报告：请先同步踏勘报告，照片随后上传"
            " (named by no report the hub holds)"
        )


def _tampered(hub: Hub, station: str, source: str, message: str) -> TamperedError:
    with hub.store.transaction():
        hub.store.reject(source, station, f"tampered: {message}", hub.clock())
    return TamperedError(message)


def _file(hub: Hub, sha: str, size: int, station: str, source: str) -> None:
    hub.store.file_blob(sha, size, station, source, hub.clock())


def progress(hub: Hub, station: str, req: BlobRequest) -> dict[str, object]:
    """What the hub holds of a blob: all of it, or which chunks of an upload of this size."""
    store = store_of(hub)
    _require_reference(hub, station, req.sha256)
    count = chunk_count(req.size)
    if held(hub, req.sha256):
        have = list(range(count))
    else:
        have = store.held_chunks(req.sha256) if hub.store.upload_size(req.sha256) == req.size else []
    return {
        "sha256": req.sha256,
        "size": req.size,
        "chunks": count,
        "held": [i for i in have if i < count],
        "complete": len(have) >= count and held(hub, req.sha256),
    }


def receive_chunk(hub: Hub, station: str, req: BlobRequest, data: bytes, *, source: str) -> dict[str, object]:
    """Store one chunk after checking it against its signed digest; file the blob when all are in."""
    store = store_of(hub)
    _require_reference(hub, station, req.sha256)
    if held(hub, req.sha256):
        return progress(hub, station, req)
    _, length = chunk_span(req.size, req.index)
    if len(data) != length:
        raise MalformedError(f"chunk {req.index} of {req.sha256[:12]}… has {len(data)} bytes; expected {length}")
    if hashlib.sha256(data).hexdigest() != req.chunk_sha256:
        raise _tampered(
            hub,
            station,
            source,
            f"照片 {req.sha256[:12]}… 的第 {req.index} 块与站点签名的摘要不符，已拒收：下次同步时重传"
            " (chunk does not match the signed digest)",
        )
    with hub.store.transaction():
        claimed = hub.store.upload_size(req.sha256)
        if claimed is not None and claimed != req.size:
            store.drop_partial(req.sha256)  # another size was claimed before: start over with this one
        hub.store.start_upload(req.sha256, req.size, station, hub.clock())
    store.put_chunk(req.sha256, req.index, data)
    count = chunk_count(req.size)
    if len([i for i in store.held_chunks(req.sha256) if i < count]) == count:
        if not store.assemble(req.sha256, count):
            with hub.store.transaction():
                hub.store.end_upload(req.sha256)
            raise _tampered(
                hub,
                station,
                source,
                f"照片 {req.sha256[:12]}… 拼合后与其摘要不符，已拒收并删除：下次同步时重传"
                " (does not hash to its name once assembled)",
            )
        with hub.store.transaction():
            _file(hub, req.sha256, req.size, station, source)
    return progress(hub, station, req)


def drop_abandoned(hub: Hub, retention_days: int = PARTIAL_RETENTION_DAYS) -> dict[str, int]:
    """Remove uploads that received no chunk for ``retention_days`` (by the chunk files' modification
    times, against ``hub.clock()``). Whole blobs are never touched. A station that comes back later
    finds no chunks held (``GET /v1/blobs/{sha}``) and sends the blob again from chunk 0."""
    if retention_days < 0:
        raise ValueError("未完成照片上传的保留天数不能为负数 (must not be negative)")
    store = store_of(hub)
    limit = hub.clock() - retention_days * DAY_MS
    dropped = freed = kept = 0
    for upload in store.partials():
        if upload.last_ms >= limit:
            kept += 1
            continue
        with hub.store.transaction():
            hub.store.end_upload(upload.sha256)
        store.drop_partial(upload.sha256)
        dropped += 1
        freed += upload.bytes
    return {"dropped": dropped, "bytes": freed, "kept": kept, "retention_days": retention_days}


def import_file(hub: Hub, data: bytes, *, source: str) -> str:
    """Take one sealed blob file carried by hand: ``"stored"`` or ``"duplicate"``. Raises on refusal."""
    store = store_of(hub)
    doc = open_document(
        data,
        kind=KIND,
        recipient=hub.hub_id,
        verify_key=hub.verify_key,
        unseal_key=seal_keys.unseal_key(hub),  # a file sealed before a rotation opens with the retired key
        limits=FILE_LIMITS,
    )
    req = BlobRequest.from_wire(doc.body)
    if req.op != "file":
        raise MalformedError(f"a blob file must have op 'file', not {req.op!r}")
    if hashlib.sha256(req.data).hexdigest() != req.sha256:
        raise _tampered(hub, doc.signer, source, f"photo {req.sha256[:12]}… in {source} does not hash to its name")
    _require_reference(hub, doc.signer, req.sha256)
    if held(hub, req.sha256):
        return "duplicate"
    store.put(req.data)
    with hub.store.transaction():
        _file(hub, req.sha256, req.size, doc.signer, source)
    return "stored"


def held_document(hub: Hub, station: str) -> bytes | None:
    """A signed list of the blobs of ``station``'s reports that the hub holds, to carry back by hand
    (so a device that only travels by USB also learns it may purge its copies)."""
    store_of(hub)
    names: set[str] = set()
    for fields in hub.store.report_fields_from(station):
        raw = unpack(fields)
        if isinstance(raw, dict):
            names.update(blobs_of(raw))
    have = sorted(s for s in names if held(hub, s))
    if not have:
        return None
    return sign_message(
        BlobsHeld(station, tuple(have)), signer=hub.hub_id, recipient=station, signing_key=hub.keys.sign
    ).frame


def is_blob_file(data: bytes) -> bool:
    """Whether a file carried by hand is a blob (rather than a batch or a claim); unauthenticated."""
    from protocol.frame import peek_header

    try:
        return peek_header(data).get("kind") == KIND
    except RemoteProtocolError:
        return False


def import_files(hub: Hub, paths: list[Path]) -> tuple[int, int, list[dict[str, str]]]:
    """(stored, duplicates, rejected) for blob files carried by hand. Import them after the batches:
    a blob is taken only once the report naming it is at the hub."""
    stored = duplicates = 0
    rejected: list[dict[str, str]] = []
    for path in paths:
        try:
            outcome = import_file(hub, carried_files.read(path, FILE_LIMITS.max_bytes), source=f"file:{path.name}")
        except carried_files.CarriedFileRefused as exc:
            rejected.append(exc.refusal.row())
            continue
        except (RemoteProtocolError, OSError) as exc:
            code = getattr(exc, "code", "unreadable")
            rejected.append({"file": str(path), "reason": f"{code}: {exc}"})
            continue
        if outcome == "stored":
            stored += 1
        else:
            duplicates += 1
    return stored, duplicates, rejected
