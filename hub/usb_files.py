"""The hub's side of sync by hand: what it takes from a station's USB stick and what it writes on one.

Import reads files as ``replica/carried_files.py`` allows (no link followed, size checked before a byte
is read) and refuses each bad one with a reason, in the hub's refusal log too; export writes the same
signed documents a station would pull. ``sanji hub import`` and ``sanji hub export`` run these.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hub import blobindex, enrolment, keyring, relay_reports
from hub.feed import feed_page
from hub.ingest import ingest_frame
from hub.service import Hub
from hub.store import HubStore
from protocol.acks import Ack, Acks
from protocol.document import open_document
from protocol.enrolment import CLAIM_MAGIC
from protocol.errors import RemoteProtocolError
from protocol.feed import PullRequest
from protocol.frame import peek_header
from protocol.wire import sign_message
from replica import carried_files
from replica.errors import Refused
from replica.rejection_words import explain, explained
from sync.session import AckResult


def _files(paths: list[Path]) -> tuple[list[Path], list[carried_files.Refusal]]:
    try:
        found, refused = carried_files.collect(paths)
    except FileNotFoundError as exc:
        raise Refused(f"{exc.filename} 不存在 (does not exist)；请检查路径，U盘是否已插好") from exc
    # Claims first: a never-online station's keys must be pinned before its batches are checked.
    return sorted(found, key=lambda x: (x.suffix != ".sjc", str(x))), refused


def _kind(data: bytes) -> str:
    try:
        return str(peek_header(data).get("kind", ""))
    except RemoteProtocolError:
        return ""  # not a document: ingest refuses it with its reason


def _take_status(hub: Hub, data: bytes) -> str | None:
    """A station's signed status on its stick (the body of an online pull): what it has applied of its
    feed, its catalogue release, what it still has to send. The dashboard then shows a USB-only station
    as it is, not "online" with catalogue v0. Returns why it was refused, or None."""
    try:
        doc = open_document(data, kind=PullRequest.KIND, recipient=hub.hub_id, verify_key=hub.verify_key)
        body = PullRequest.from_wire(doc.body)
    except RemoteProtocolError as exc:
        return f"{exc.code}: 站点状态文件无法核验，未采用 ({exc})"
    with hub.store.transaction():
        note_status(hub.store, doc.signer, body, hub.clock())
    return None


def note_status(store: HubStore, station: str, body: PullRequest, now: int) -> None:
    """What a status carried by hand says (on a stick to the hub, or through a township's relay when
    older than an online pull may be): taken unless an older one than already carried."""
    if not store.carried_status(station, now, body.at_ms):
        return  # an older status than one already carried: nothing in it is news
    store.seen(
        station,
        now,
        backlog=body.pending,
        catalogue_version=body.catalogue_version,
        feed_ack=body.after,
        error=body.problem[:500] if body.problem is not None else None,
        via="usb",
    )
    if body.seq is not None and body.epoch is not None and 0 <= body.seq < 2**62 and 0 < body.epoch < 2**62:
        store.note_horizon(station, body.epoch, body.seq, body.after)
    # A village's report of its relay misbehaving travels on its stick too (hub/relay_reports.py).
    relay_reports.record(store, station, body.relay, body.relay_problem, body.relay_at_ms, now)


def import_files(hub: Hub, paths: list[Path]) -> dict[str, object]:
    """Ingest what a station's stick carries: claims first, then batches, then photos and scans."""
    accepted = duplicates = skipped = 0
    rejected: list[dict[str, str]] = []
    blob_files: list[Path] = []
    claimed: list[str] = []  # stations enrolled offline whose keys this stick's claims pinned
    statuses: list[tuple[Path, bytes]] = []
    found, refused = _files(paths)
    for path in found:
        try:
            data = carried_files.read(path)
        except carried_files.CarriedFileRefused as exc:
            refused.append(exc.refusal)
            continue
        if carried_files.going_the_other_way(data, hub_id=hub.hub_id, at_hub=True):
            skipped += 1  # the hub's own exports on a stick used both ways: not a rejection
            continue
        if blobindex.is_blob_file(data):
            blob_files.append(path)  # after the batches: a blob needs its report at the hub first
            continue
        if _kind(data) == PullRequest.KIND:
            statuses.append((path, data))  # after the batches: its backlog counts what is still to come
            continue
        if data.startswith(CLAIM_MAGIC):
            try:
                claimed.append(enrolment.take_claim(hub, data, f"file:{path.name}"))
            except RemoteProtocolError as exc:
                rejected.append({"file": str(path), "reason": f"{exc.code}: {explain(exc.code, str(exc))}"})
            continue
        ack = ingest_frame(hub, data, source=f"file:{path.name}")
        if ack.result in (AckResult.APPLIED, AckResult.QUARANTINED):
            accepted += 1
        elif ack.result is AckResult.DUPLICATE:
            duplicates += 1
        else:
            rejected.append({"file": str(path), "reason": f"{ack.result.value}: {explained(ack.reason)}"})
    for path, data in statuses:
        problem = _take_status(hub, data)
        if problem is not None:
            rejected.append({"file": str(path), "reason": problem})
            with hub.store.transaction():
                hub.store.reject(f"file:{path.name}", "", problem, hub.clock())
    blobs, blob_dups, blob_rejected = blobindex.import_files(hub, blob_files)
    rejected += blob_rejected
    if refused:
        with hub.store.transaction():
            for r in refused:
                hub.store.reject(f"file:{r.path.name}", "", f"{r.code}: {r.reason}", hub.clock())
    rejected += [r.row() for r in refused]
    return {
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "blobs": blobs,
        "blob_duplicates": blob_dups,
        "skipped": skipped,
        "claimed": claimed,
    }


def export_files(hub: Hub, code: str, out: Path) -> list[str]:
    """Write what a station takes home on a stick: the hub's key history first, its feed pages from its
    cursor, its latest receipts and the list of its photos the hub holds."""
    station = hub.store.station(code)
    if station is None:
        raise Refused(f"区局没有登记站点 {code}：请核对站点编码（sanji hub status 列出所有站点） (no such station)")
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    after, version = station.feed_ack, station.catalogue_version
    latest = hub.store.latest_release()
    while True:
        page = feed_page(hub, code, after=after, catalogue_version=version)
        body_next, more = _page_next(page)
        name = out / f"{code}_feed_{after:010d}-{body_next:010d}.sjd"
        name.write_bytes(page)
        files.append(str(name))
        # A new release rides on the first page only. A page with the release and no changes (they did
        # not fit beside it) has next == after and more: the changes follow on the next page.
        carried, version = version, max(version, latest[0] if latest is not None else 0)
        if body_next == after and not (more and carried != version):
            break
        after = body_next
    receipts = hub.store.recent_receipts(code, 5000)
    if receipts:
        # No counts: a station reading these defaults them to 0 (the format has always been so).
        acks = Acks(tuple(Ack(h, r, receipt=rc) for h, r, rc in receipts))
        doc = sign_message(acks, signer=hub.hub_id, recipient=code, signing_key=hub.keys.sign).frame
        name = out / f"{code}_receipts_{hashlib.sha256(doc).hexdigest()[:12]}.sjd"
        name.write_bytes(doc)
        files.append(str(name))
    keys = keyring.bundle(hub)  # first on the stick: the pages after it may be signed by a key only it names
    name = out / f"{code}_keys_v{int(str(keys['version'])):04d}.sjk"
    name.write_bytes(keyring.key_file(keys))
    files.insert(0, str(name))
    held = blobindex.held_document(hub, code)  # lets a USB-only field device purge its photos
    if held is not None:
        name = out / f"{code}_blobs_held_{hashlib.sha256(held).hexdigest()[:12]}.sjd"
        name.write_bytes(held)
        files.append(str(name))
    return files


def _page_next(page: bytes) -> tuple[int, bool]:
    """The `next` cursor and `more` of a page we just made; feed pages carry them in their signed header."""

    header = peek_header(page)
    value = header.get("next")
    return (int(value) if isinstance(value, int) else 0), header.get("more") is True
