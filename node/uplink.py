"""The station's side of sync: build batches, push them, pull the feed (by USB: ``node/usb_files.py``).

Batches are built once and kept byte for byte in the outbox, so a retry after a lost answer is a
duplicate the hub recognises, never a fork. Pushing offers every unsettled batch in order; one that is
refused is marked with the hub's reason and the rest still go. The hub's answers and feed pages are
opened only with the hub key pinned at enrolment.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from node import freshness
from node.epoch import reissue_after_fork
from node.station import Station
from protocol.acks import Acks
from protocol.batch import build_batch_hashed
from protocol.codec import unpack
from protocol.document import Document, open_document
from protocol.enrolment import encode_claim
from protocol.errors import RemoteProtocolError
from protocol.feed import FeedPage, PullRequest
from protocol.keys import load_seal_public
from protocol.limits import BATCH_PLAN_BYTES, BATCH_PLAN_CHANGES
from protocol.wire import REQUEST_HEADER as REQUEST_HEADER  # node/client.py sends the pull under it
from protocol.wire import sign_message
from replica.errors import Refused
from sync.batching import plan_batches
from sync.catalogue import CatalogueError
from sync.change import change_from_wire
from sync.model import ModelError
from sync.session import SETTLED, Ack, AckResult, Outgoing

MAX_BATCH_CHANGES = BATCH_PLAN_CHANGES  # aliases of the shared table's names
MAX_BATCH_BYTES = BATCH_PLAN_BYTES


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
            frame, chain = build_batch_hashed(
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
        doc = open_document(data, kind=Acks.KIND, recipient=st.code, verify_key=st.hub_key)
    except RemoteProtocolError as exc:
        raise Refused(f"the hub's answer could not be verified: {exc}") from exc
    return record_acks(st, doc)


def record_acks(st: Station, doc: Document) -> list[Ack]:
    try:
        body = Acks.from_wire(doc.body)
    except RemoteProtocolError as exc:
        raise Refused(f"the hub's answer is not a readable list of acknowledgements: {exc}") from exc
    acks: list[Ack] = []
    with st.transaction():
        for wire in body.acks:
            result, bhash = AckResult(wire.result), wire.batch
            ack = Ack(bhash, result, wire.expected, wire.reason)
            acks.append(ack)
            receipt = wire.receipt or None  # over the receipt cap, from_wire has already dropped it
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
    seq, epoch = st.meta.int("seq"), st.meta.int("epoch", 1)
    seen = st.meta.get("horizon", [])
    if isinstance(seen, list) and len(seen) == 3 and seen[0] == epoch and seen[2] == after:
        seq = int(seen[1])  # the earliest of our changes known to be written after applying ``after``
    body = PullRequest(after, st.clock(), int(cat), st.pending_changes(), freshness.report(st), seq, epoch, nonce)
    doc = sign_message(body, signer=st.code, recipient=st.hub_id, signing_key=st.keys.sign)
    return base64.b64encode(doc.frame).decode()


class FeedGap(Refused):
    """A feed page that starts after what this station has applied: not a bad page, an early one."""

    default_code = "feed_gap"


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
            kind=FeedPage.KIND,
            recipient=st.code,
            verify_key=st.hub_key,
            unseal_key=lambda k: st.keys.seal if k == st.keys.seal_key_id else None,
        )
    except RemoteProtocolError as exc:
        raise Refused(f"feed refused: {exc}") from exc
    try:
        page = FeedPage.from_wire(doc.body)
    except RemoteProtocolError as exc:
        raise Refused(f"feed page is malformed: {exc}") from exc
    changes = []
    for raw in page.changes:
        try:
            changes.append(change_from_wire(raw))
        except ModelError as exc:
            raise Refused(f"feed page carries an invalid change: {exc}") from exc
    outcome = ""
    if page.after > st.meta.int("feed_cursor"):
        # Applying it would move the cursor past pages we never applied (a damaged file on the stick):
        # refuse, so the missing pages are asked for again.
        raise FeedGap(
            f"feed page starts after change {page.after}, but this station has applied only up to "
            f"{st.meta.int('feed_cursor')}; import the earlier pages first (or sync online)"
        )
    generation = page.generation
    if generation is not None and generation != st.meta.text("hub_generation"):
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
        if page.origins:
            st.remember_origins(page.origins)
        if page.catalogue is not None:
            try:
                _, outcome = st.store_catalogue(page.catalogue)
            except (Refused, CatalogueError) as exc:
                # A release this station cannot use must not cost it the page's changes: they apply,
                # the station keeps its current release, and staff see why (`node status`).
                outcome = "refused"
                st.meta.set(
                    "catalogue_warning",
                    f"区局发来的事项目录未通过校验，已拒收，继续使用当前目录"
                    f"（{exc}）；请联系区局 (catalogue release refused)",
                )
        if page.field_devices is not None:
            st.meta.set("field_devices", sorted(page.field_devices))
        result = st.records.apply(changes)
        for c in changes:
            st.observe(c.hlc)
        nxt = page.next
        if nxt > st.meta.int("feed_cursor"):
            st.meta.set("feed_cursor", nxt)
            # What we have now seen, as of the changes we have written so far: every batch says it, so
            # the hub can tell a concurrent write of ours from one made after we received a decision.
            st.meta.set("horizon", [st.meta.int("epoch", 1), st.meta.int("seq"), nxt])
        if page.hub_ms > st.meta.int("hub_time"):
            st.meta.set("hub_time", page.hub_ms)  # the newest genuine hub time (status shows it)
    return FeedResult(result.applied, nxt, page.more, outcome, page.hub_ms)


# -- by hand ---------------------------------------------------------------------------------------


def claim_file(st: Station) -> bytes:
    return encode_claim(st.code, st.keys.sign_pub, st.keys.seal_pub, st.meta.bytes("enrol_proof"))
