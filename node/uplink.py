"""The station's side of sync: build batches, push them, pull the feed, and the same by USB.

Batches are built once and kept byte for byte in the outbox, so a retry after a lost answer is a
duplicate the hub recognises, never a fork. Pushing offers every unsettled batch in order; one that is
refused is marked with the hub's reason and the rest still go. The hub's answers and feed pages are
opened only with the hub key pinned at enrolment.
"""

from __future__ import annotations

import base64
from pathlib import Path

from node import blobs, feed_quarantine, freshness, hubkeys
from node.epoch import reissue_after_fork
from node.feed import FeedGap as FeedGap  # apply_feed and its types live in node/feed.py; these names stay
from node.feed import FeedResult as FeedResult
from node.feed import apply_feed as apply_feed
from node.station import Station
from node.store import UNSETTLED_SQL
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
from sync import outbox
from sync.batching import plan_batches
from sync.catalogue import CatalogueError
from sync.outbox import Action, BatchState, Event
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
                " VALUES (?,?,?,?,?,?,?)",
                (chain, epoch, first, last, frame, BatchState.PENDING.value, st.clock()),
            )
            made += 1
        st.meta.set("chain", chain)
        st.meta.set("batched_seq", last)
    return made


def unsettled(st: Station) -> list[tuple[Outgoing, bytes]]:
    rows = st.conn.execute(
        f"SELECT hash, epoch, first_seq, last_seq, frame FROM outbox WHERE state IN {UNSETTLED_SQL}"
        " ORDER BY epoch, first_seq"
    ).fetchall()
    return [(Outgoing(int(r[1]), int(r[2]), int(r[3]), bytes(r[0]), len(r[4])), bytes(r[4])) for r in rows]


def mark_refused(st: Station, hashes: list[bytes], reason: str) -> None:
    """The hub answered a whole push with an error: every batch in it is marked with the reason."""
    with st.transaction():
        for h in hashes:
            row = st.conn.execute("SELECT state FROM outbox WHERE hash=?", (h,)).fetchone()
            if row is not None:
                step = outbox.step(BatchState(str(row[0])), Event.REFUSED)
                st.conn.execute(
                    "UPDATE outbox SET state=?, reason=CASE WHEN ? THEN ? ELSE reason END WHERE hash=?",
                    (step.state.value, step.note, reason, h),
                )


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
            row = st.conn.execute("SELECT state FROM outbox WHERE hash=?", (bhash,)).fetchone()
            if row is None:
                if result is AckResult.FORK:  # not ours to mark, but the hub says our seqs forked
                    _forked(st, bhash)
                continue
            step = outbox.step(BatchState(str(row[0])), outbox.EVENT_OF[result])
            reason = ack.reason if result in SETTLED or result is AckResult.GAP else f"{result.value}: {ack.reason}"
            st.conn.execute(
                "UPDATE outbox SET state=?, reason=CASE WHEN ? THEN ? ELSE reason END WHERE hash=?",
                (step.state.value, step.note, reason, bhash),
            )
            if step.action is Action.KEEP_RECEIPT:
                st.conn.execute(
                    "UPDATE outbox SET receipt=COALESCE(?, receipt), receipted_ms=COALESCE(receipted_ms, ?)"
                    " WHERE hash=?",
                    (receipt or None, st.clock(), bhash),
                )
            elif step.action is Action.REQUEUE:
                _requeue_from(st, bhash, ack.expected_seq)
            elif step.action is Action.REISSUE:
                _forked(st, bhash)
    return acks


def _forked(st: Station, bhash: bytes) -> None:
    n = reissue_after_fork(st, bhash)
    st.meta.set(
        "last_error",
        f"the hub holds other content for our seqs (restored from a backup or "
        f"cloned?): {n} change(s) re-issued under epoch {st.meta.int('epoch')}",
    )


def _requeue_from(st: Station, bhash: bytes, expected: int) -> None:
    """The hub lacks seqs we thought it held (it was restored from a backup): send them again."""
    row = st.conn.execute("SELECT epoch FROM outbox WHERE hash=?", (bhash,)).fetchone()
    if row is None:
        return
    moved = sorted(outbox.moved_by(Event.RESEND))
    rows = st.conn.execute(
        f"SELECT hash, state FROM outbox WHERE epoch=? AND last_seq>=? AND state IN ({','.join('?' * len(moved))})"
        " AND length(frame) > 0",  # compacted batches cannot be resent: the nightly reconciliation repairs those
        (int(row[0]), expected, *moved),
    ).fetchall()
    for h, state in rows:
        step = outbox.step(BatchState(str(state)), Event.RESEND)
        st.conn.execute("UPDATE outbox SET state=? WHERE hash=?", (step.state.value, h))


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
