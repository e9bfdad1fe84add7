"""The station's side of sync: build batches, push them, pull the feed, and the same by USB.

Batches are built once and kept byte for byte in the outbox, so a retry after a lost answer is a
duplicate the hub recognises, never a fork. Pushing offers every unsettled batch in order; one that is
refused is marked with the hub's reason and the rest still go. The hub's answers and feed pages are
opened only with the hub key pinned at enrolment.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from node import blobs, freshness, hubkeys
from node.epoch import reissue_after_fork
from node.station import Station
from protocol.batch import batch_filename, build_batch, verify_batch
from protocol.codec import unpack
from protocol.document import Document, open_document, sign_document
from protocol.enrolment import encode_claim
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.keys import load_seal_public
from protocol.limits import BATCH_PLAN_BYTES, BATCH_PLAN_CHANGES, RECEIPT_FRAME_MAX_BYTES
from replica import carried_files
from replica.errors import Refused
from replica.ids import iso_from_ms
from sync.batching import plan_batches
from sync.catalogue import CatalogueError
from sync.change import change_from_wire
from sync.model import ModelError
from sync.session import SETTLED, Ack, AckResult, Outgoing

MAX_BATCH_CHANGES = BATCH_PLAN_CHANGES  # aliases of the shared table's names
MAX_BATCH_BYTES = BATCH_PLAN_BYTES
REQUEST_HEADER = "X-Sanji-Request"


def build_outbox(st: Station, max_batches: int | None = None) -> int:
    """Put own changes not yet batched into signed, sealed batches: all of them, or the first
    ``max_batches`` batches' worth (the rest wait for the next call). Returns batches made."""
    made = 0
    with st.transaction():
        code = st.code
        epoch = st.meta.int("epoch", 1)
        done = st.meta.int("batched_seq")
        limit = -1 if max_batches is None else max_batches * MAX_BATCH_CHANGES
        rows = st.conn.execute(
            "SELECT seq, hlc, entity, rid, fields, base FROM changes WHERE origin=? AND epoch=? AND seq>?"
            " ORDER BY seq LIMIT ?",
            (code, epoch, done, limit),
        ).fetchall()
        if not rows:
            return 0
        wires = [[code, epoch, r[0], r[1], r[2], r[3], unpack(r[4]), unpack(r[5])] for r in rows]
        sizes = [len(r[4]) + len(r[5]) + 48 for r in rows]
        chain = st.meta.bytes("chain", bytes(32))
        seal_to = load_seal_public(st.meta.bytes("hub_seal_pub"))
        seal_key_id, hlc, hub_id = st.meta.text("hub_seal_key_id"), st.meta.int("hlc"), st.hub_id
        seen = st.meta.get("horizon", [])
        horizon = (
            (int(seen[1]), int(seen[2])) if isinstance(seen, list) and len(seen) == 3 and seen[0] == epoch else None
        )
        last = done
        for rng in plan_batches(sizes, max_count=MAX_BATCH_CHANGES, max_bytes=MAX_BATCH_BYTES)[:max_batches]:
            part = wires[rng.start : rng.stop]
            first = int(str(part[0][2]))
            last = first + len(part) - 1
            frame = build_batch(
                origin=code,
                epoch=epoch,
                first_seq=first,
                changes=list(part),
                prev=chain,
                recipient=hub_id,
                hlc=hlc,
                signing_key=st.keys.sign,
                seal_to=seal_to,
                recipient_key=seal_key_id,
                horizon=horizon,
            )
            vb = verify_batch(frame, recipient=hub_id, verify_key=lambda s, k: st.keys.sign.public_key())
            chain = vb.frame.header_hash
            st.conn.execute(
                "INSERT INTO outbox (hash, epoch, first_seq, last_seq, frame, state, created_ms)"
                " VALUES (?,?,?,?,?,'pending',?)",
                (chain, epoch, first, last, frame, st.clock()),
            )
            made += 1
        st.meta.set("chain", chain)
        st.meta.set("batched_seq", last)
    return made


def unsettled(st: Station) -> list[tuple[Outgoing, bytes]]:
    rows = st.conn.execute(
        "SELECT hash, epoch, first_seq, last_seq, frame FROM outbox WHERE state IN ('pending', 'rejected')"
        " ORDER BY epoch, first_seq"
    ).fetchall()
    return [(Outgoing(int(r[1]), int(r[2]), int(r[3]), bytes(r[0]), len(r[4])), bytes(r[4])) for r in rows]


def read_acks(st: Station, data: bytes) -> list[Ack]:
    """Open the hub's signed answer to a push and record every acknowledgement in the outbox."""
    try:
        doc = open_document(data, kind="acks", recipient=st.code, verify_key=st.hub_key)
    except RemoteProtocolError as exc:
        raise Refused(f"the hub's answer could not be verified: {exc}") from exc
    return record_acks(st, doc)


def record_acks(st: Station, doc: Document) -> list[Ack]:
    body = doc.body
    if not isinstance(body, dict) or not isinstance(body.get("acks"), list):
        raise Refused("the hub's answer has no acknowledgements")
    acks: list[Ack] = []
    with st.transaction():
        for raw in body["acks"]:
            if not isinstance(raw, dict):
                continue
            try:
                result = AckResult(str(raw.get("result")))
            except ValueError:
                continue
            bhash = raw.get("batch")
            if not isinstance(bhash, bytes):
                continue
            ack = Ack(bhash, result, int(raw.get("expected") or 0), str(raw.get("reason") or ""))
            acks.append(ack)
            receipt = raw.get("receipt") if isinstance(raw.get("receipt"), bytes) else None
            if receipt is not None and len(receipt) > RECEIPT_FRAME_MAX_BYTES:
                receipt = None  # a receipt is a small signed frame; a larger one is kept by nobody
            if result in SETTLED:
                st.conn.execute(
                    "UPDATE outbox SET state=?, reason=?, receipt=COALESCE(?, receipt),"
                    " receipted_ms=COALESCE(receipted_ms, ?) WHERE hash=?",
                    (
                        "quarantined" if result is AckResult.QUARANTINED else "receipted",
                        ack.reason,
                        receipt or None,
                        st.clock(),
                        bhash,
                    ),
                )
            elif result is AckResult.GAP:
                st.conn.execute("UPDATE outbox SET reason=? WHERE hash=?", (ack.reason, bhash))
                _requeue_from(st, bhash, ack.expected_seq)
            elif result is AckResult.FORK:
                # A batch already superseded by a new epoch stays superseded: answered twice, it must
                # not go back in the queue and be answered "fork" forever.
                st.conn.execute(
                    "UPDATE outbox SET state='rejected', reason=? WHERE hash=? AND state!='superseded'",
                    (f"fork: {ack.reason}", bhash),
                )
                n = reissue_after_fork(st, bhash)
                st.meta.set(
                    "last_error",
                    f"the hub holds other content for our seqs (restored from a backup or "
                    f"cloned?): {n} change(s) re-issued under epoch {st.meta.int('epoch')}",
                )
            else:
                st.conn.execute(
                    "UPDATE outbox SET state='rejected', reason=? WHERE hash=?",
                    (f"{result.value}: {ack.reason}", bhash),
                )
    return acks


def _requeue_from(st: Station, bhash: bytes, expected: int) -> None:
    """The hub lacks seqs we thought it held (it was restored from a backup): send them again."""
    row = st.conn.execute("SELECT epoch FROM outbox WHERE hash=?", (bhash,)).fetchone()
    if row is None:
        return
    st.conn.execute(
        "UPDATE outbox SET state='pending' WHERE epoch=? AND last_seq>=? AND state IN ('receipted', 'quarantined')"
        " AND length(frame) > 0",  # compacted batches cannot be resent: the nightly reconciliation repairs those
        (int(row[0]), expected),
    )


def pull_request(st: Station, after: int, nonce: bytes = b"") -> str:
    """The signed header that proves a pull comes from this station (fresh: it carries the time, and the
    nonce the hub's page must answer)."""
    cat = st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0
    # seq and epoch: what this station had written when it had applied its feed up to ``after``; the hub
    # learns from them which decisions its later changes were written having seen (sync/admission.py).
    body: dict[str, object] = {
        "after": after,
        "catalogue_version": int(cat),
        "pending": st.pending_changes(),
        "at_ms": st.clock(),
        "problem": freshness.report(st),
        "seq": st.meta.int("seq"),
        "epoch": st.meta.int("epoch", 1),
    }
    seen = st.meta.get("horizon", [])
    if isinstance(seen, list) and len(seen) == 3 and seen[0] == body["epoch"] and seen[2] == after:
        body["seq"] = seen[1]  # the earliest of our changes known to be written after applying ``after``
    if nonce:
        body["nonce"] = nonce
    doc = sign_document("pull", body, signer=st.code, recipient=st.hub_id, signing_key=st.keys.sign)
    return base64.b64encode(doc).decode()


class FeedGap(Refused):
    """A feed page that starts after what this station has applied: not a bad page, an early one."""


@dataclass
class FeedResult:
    pulled: int
    next: int
    more: bool
    catalogue: str
    hub_ms: int = 0  # the hub's time when it made the page


def apply_feed(st: Station, data: bytes) -> FeedResult:
    """Verify one feed page with the pinned hub key and apply it in one transaction."""
    try:
        doc = open_document(
            data,
            kind="feed",
            recipient=st.code,
            verify_key=st.hub_key,
            unseal_key=lambda k: st.keys.seal if k == st.keys.seal_key_id else None,
        )
    except RemoteProtocolError as exc:
        raise Refused(f"feed refused: {exc}") from exc
    body = doc.body
    if not isinstance(body, dict) or not isinstance(body.get("changes"), list):
        raise Refused("feed page has no changes list")
    changes = []
    for raw in body["changes"]:
        try:
            changes.append(change_from_wire(raw))
        except ModelError as exc:
            raise Refused(f"feed page carries an invalid change: {exc}") from exc
    outcome = ""
    after = body.get("after")
    if isinstance(after, int) and after > st.meta.int("feed_cursor"):
        # Applying it would move the cursor past pages we never applied (a damaged file on the stick):
        # refuse, so the missing pages are asked for again.
        raise FeedGap(
            f"feed page starts after change {after}, but this station has applied only up to "
            f"{st.meta.int('feed_cursor')}; import the earlier pages first (or sync online)"
        )
    generation = body.get("generation")
    if isinstance(generation, str) and generation != st.meta.text("hub_generation"):
        # The hub was restored from a backup: its change numbering restarted, so our cursor means
        # nothing there any more. Start the feed over; changes we already hold are skipped.
        with st.transaction():
            known = st.meta.text("hub_generation")
            st.meta.set("hub_generation", generation)
            if known:
                st.meta.set("feed_cursor", 0)
                st.meta.set("horizon", [])  # positions in the old generation's feed mean nothing now
                return FeedResult(0, 0, True, "")
    with st.transaction():
        origins = body.get("origins")
        if isinstance(origins, dict):
            st.remember_origins({str(k): str(v) for k, v in origins.items()})
        if isinstance(body.get("catalogue"), bytes):
            try:
                _, outcome = st.store_catalogue(body["catalogue"])
            except (Refused, CatalogueError) as exc:
                # A release this station cannot use must not cost it the page's changes: they apply,
                # the station keeps its current release, and staff see why (`node status`).
                outcome = "refused"
                st.meta.set(
                    "catalogue_warning",
                    f"区局发来的事项目录未通过校验，已拒收，继续使用当前目录"
                    f"（{exc}）；请联系区局 (catalogue release refused)",
                )
        devices = body.get("field_devices")
        if isinstance(devices, list) and all(isinstance(d, str) for d in devices):
            st.meta.set("field_devices", sorted(devices))
        result = st.records.apply(changes)
        for c in changes:
            st.observe(c.hlc)
        nxt = int(body.get("next") or 0)
        if nxt > st.meta.int("feed_cursor"):
            st.meta.set("feed_cursor", nxt)
            # What we have now seen, as of the changes we have written so far: every batch says it, so
            # the hub can tell a concurrent write of ours from one made after we received a decision.
            st.meta.set("horizon", [st.meta.int("epoch", 1), st.meta.int("seq"), nxt])
        hub_ms = body.get("hub_ms") if type(body.get("hub_ms")) is int else 0
        if int(str(hub_ms)) > st.meta.int("hub_time"):
            st.meta.set("hub_time", hub_ms)  # the newest genuine hub time (status shows it)
    return FeedResult(result.applied, nxt, bool(body.get("more")), outcome, int(str(hub_ms)))


# -- by hand ---------------------------------------------------------------------------------------


def claim_file(st: Station) -> bytes:
    return encode_claim(st.code, st.keys.sign_pub, st.keys.seal_pub, st.meta.bytes("enrol_proof"))


def export(st: Station, out: Path) -> dict[str, object]:
    build_outbox(st)
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    if not st.meta.get("enrolled", False):
        path = out / f"{st.code}_claim.sjc"
        path.write_bytes(claim_file(st))
        files.append(str(path))
    changes = 0
    for outgoing, frame in unsettled(st):
        vb = verify_batch(frame, recipient=st.hub_id, verify_key=lambda s, k: st.keys.sign.public_key())
        path = out / batch_filename(vb.header)
        path.write_bytes(frame)
        files.append(str(path))
        changes += outgoing.last_seq - outgoing.first_seq + 1
    photos = blobs.export(st, out)  # after the batches that name them; sealed to the hub
    return {"files": files + photos, "changes": changes, "blobs": len(photos)}


def import_files(st: Station, paths: list[Path]) -> dict[str, object]:
    """Apply hub files carried by hand: feed pages, catalogue releases, acknowledgements."""
    from node import feed_quarantine  # it applies pages through apply_feed above

    found, refused = _expand(paths)
    rejected = [r.row() for r in refused]
    older: list[dict[str, str]] = []
    found, skipped = _for_this_station(st, found)
    accepted, key_refused, found = hubkeys.import_key_files(st, found)  # before the pages they sign
    rejected += key_refused
    for path in found:
        try:
            data = carried_files.read(path)  # size-checked before a byte is read; links never followed
            kind = str(peek_header(data).get("kind", ""))
            if kind == "feed":
                held = st.meta.int("hub_time")
                page = feed_quarantine.take_page(st, data, source=f"file:{path.name}")
                if page.result is None:
                    raise Refused(page.problem)
                if 0 < page.result.hub_ms < held:  # genuine, but not news: say so rather than plain success
                    older.append(
                        {
                            "file": str(path),
                            "reason": (
                                f"该数据页比本站已有的区局数据旧（页面时间 {iso_from_ms(page.result.hub_ms)}，本站已有 "
                                f"{iso_from_ms(held)}），已核验，已有的变更不会重复应用 (older than what this station "
                                "holds)；如需最新数据请向区局重新导出"
                            ),
                        }
                    )
            elif kind == "catalogue":
                with st.transaction():
                    _, outcome = st.store_catalogue(data)
                if outcome == "rollback_refused":
                    raise Refused("older than the catalogue this station already has (rollback refused)")
            elif kind == "acks":
                doc = open_document(data, kind="acks", recipient=st.code, verify_key=st.hub_key)
                record_acks(st, doc)
            elif kind == "blobs_held":  # the hub holds these photos: they may be purged here
                blobs.import_held(st, data)
            else:
                raise Refused(f"not a hub file for this station (kind {kind!r})")
            accepted += 1
        except carried_files.CarriedFileRefused as exc:
            rejected.append(exc.refusal.row())
        except (Refused, RemoteProtocolError, CatalogueError, OSError) as exc:
            rejected.append({"file": str(path), "reason": str(exc)})
    if accepted:
        with st.transaction():  # a file exchange is a USB-only station's sync: status says when it was
            st.meta.set("last_import", st.clock())
    return {"accepted": accepted, "rejected": rejected, "older": older, "skipped": skipped}


def _for_this_station(st: Station, paths: list[Path]) -> tuple[list[Path], int]:
    """The files not addressed away from this station (its own exports, other stations' batches for
    the hub), and how many were skipped. A file that cannot be read stays, to be refused with why."""
    kept, skipped = [], 0
    for path in paths:
        try:
            data = carried_files.read(path)
        except carried_files.CarriedFileRefused:
            kept.append(path)
            continue
        if carried_files.going_the_other_way(data, hub_id=st.hub_id, at_hub=False):
            skipped += 1
        else:
            kept.append(path)
    return kept, skipped


def _expand(paths: list[Path]) -> tuple[list[Path], list[carried_files.Refusal]]:
    """The files named, and those directly in the folders named (a stick may hold other stations'
    folders below), without following a link; what was not a readable regular file, with why."""
    try:
        found, refused = carried_files.collect(paths)
    except FileNotFoundError as exc:
        raise Refused(f"{exc.filename} 不存在 (does not exist)；请检查路径，U盘是否已插好") from exc
    named = set(paths)
    return (
        [p for p in found if p in named or p.parent in named],
        [r for r in refused if r.path in named or r.path.parent in named],
    )


def last_sync_text(st: Station) -> str | None:
    ms = st.meta.int("last_sync")
    return iso_from_ms(ms) if ms else None
