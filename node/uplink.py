"""The station's side of sync: build batches, push them, pull the feed (by USB: ``node/usb_files.py``).

Batches are built once and kept byte for byte in the outbox, so a retry after a lost answer is a
duplicate the hub recognises, never a fork. Pushing offers every unsettled batch in order; one that is
refused is marked with the hub's reason and the rest still go. The hub's answers and feed pages are
opened only with the hub key pinned at enrolment.
"""

from __future__ import annotations

import base64
import dataclasses

from node import freshness, relay_address, relay_alert
from node.epoch import reissue_after_fork
from node.feed import FeedGap as FeedGap  # apply_feed and its types live in node/feed.py; these names stay
from node.feed import FeedResult as FeedResult
from node.feed import apply_feed as apply_feed
from node.station import Station
from node.store import UNSETTLED_SQL
from protocol.acks import Acks
from protocol.batch import build_batch_hashed
from protocol.codec import unpack
from protocol.document import Document, open_document
from protocol.enrolment import encode_claim
from protocol.errors import RemoteProtocolError
from protocol.feed import PullRequest
from protocol.keys import load_seal_public
from protocol.limits import BATCH_PLAN_BYTES, BATCH_PLAN_CHANGES
from protocol.wire import REQUEST_HEADER as REQUEST_HEADER  # node/client.py sends the pull under it
from protocol.wire import sign_message
from replica.errors import Refused
from sync import outbox
from sync.batching import plan_batches
from sync.outbox import Action, BatchState, Event
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
            "SELECT seq, hlc, entity, rid, fields, base, author, hub_seal FROM changes"
            " WHERE origin=? AND epoch=? AND seq>? ORDER BY seq LIMIT ?",
            (code, epoch, done, limit),
        ).fetchall()
        if not rows:
            return 0
        # The author rides as a ninth element when there is one (sync.change.change_to_wire), signed
        # with the rest of the batch; a change whose personal values are sealed at rest carries them
        # sealed to the hub as a tenth (protocol/hub_seal.py), so no key is needed here.
        wires = [_wire(code, epoch, r) for r in rows]
        sizes = [len(r[4]) + len(r[5]) + len(r[6]) + len(r[7] or b"") + 48 for r in rows]
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
                " VALUES (?,?,?,?,?,?,?)",
                (chain, epoch, first, last, frame, BatchState.PENDING.value, st.clock()),
            )
            made += 1
        st.meta.set("chain", chain)
        st.meta.set("batched_seq", last)
    return made


def _wire(code: str, epoch: int, r: tuple[object, ...]) -> list[object]:
    seq, hlc, entity, rid, fields, base, author, hub_seal = r
    wire = [code, epoch, seq, hlc, entity, rid, unpack(fields), unpack(base)]  # type: ignore[arg-type]
    if hub_seal:
        return [*wire, author, unpack(hub_seal)]  # type: ignore[arg-type]
    return [*wire, author] if author else wire


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
        doc = open_document(data, kind=Acks.KIND, recipient=st.code, verify_key=st.hub_key)
    except RemoteProtocolError as exc:
        raise Refused(
            f"区局的回执核验未通过，未采用：变更仍在队列中，下次同步会重传 (could not be verified: {exc})"
        ) from exc
    return record_acks(st, doc)


def record_acks(st: Station, doc: Document) -> list[Ack]:
    try:
        body = Acks.from_wire(doc.body)
    except RemoteProtocolError as exc:
        raise Refused(
            f"区局的回执无法读取，未采用：变更仍在队列中，下次同步会重传 (not a readable list: {exc})"
        ) from exc
    acks: list[Ack] = []
    with st.transaction():
        for wire in body.acks:
            result, bhash = AckResult(wire.result), wire.batch
            ack = Ack(bhash, result, wire.expected, wire.reason)
            acks.append(ack)
            receipt = wire.receipt or None  # over the receipt cap, from_wire has already dropped it
            row = st.conn.execute("SELECT state FROM outbox WHERE hash=?", (bhash,)).fetchone()
            if row is None:
                if result is AckResult.FORK:  # not ours to mark, but the hub says our seqs forked
                    _forked(st, bhash)
                continue
            if result in SETTLED:
                # A signed receipt for its own batch: the hub holds this station's keys, by whatever
                # path (direct, relay, stick) the answer came, so `node export` stops writing the claim.
                st.meta.set("enrolled", True)
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
        f"区局已有本站同一序号的不同内容（本站可能从备份恢复或被复制过）：已将 {n} 条变更按第 "
        f"{st.meta.int('epoch')} 期编号重新上传，无须处理；如本站被复制过请联系区局 (seqs forked)",
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
    return base64.b64encode(pull_frame(st, after, nonce)).decode()


def pull_frame(st: Station, after: int, nonce: bytes = b"") -> bytes:
    """The signed `pull` document: online it asks for the next page; on a stick (no nonce) it tells the
    hub where this station stands (node/usb_files.py)."""
    cat = st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0
    # seq and epoch: what this station had written when it had applied its feed up to ``after``; the hub
    # learns from them which decisions its later changes were written having seen (sync/admission.py).
    seq, epoch = st.meta.int("seq"), st.meta.int("epoch", 1)
    seen = st.meta.get("horizon", [])
    if isinstance(seen, list) and len(seen) == 3 and seen[0] == epoch and seen[2] == after:
        seq = int(seen[1])  # the earliest of our changes known to be written after applying ``after``
    body = PullRequest(
        after,
        st.clock(),
        int(cat),
        st.pending_changes(),
        freshness.report(st),
        seq,
        epoch,
        nonce,
        st.meta.int("staff_version"),  # the hub's staff accounts: only those changed since (node/feed.py)
    )
    alert = relay_alert.to_report(st)  # the township relay misbehaved: the hub hears it from us
    if alert is not None:
        body = dataclasses.replace(
            body, relay=str(alert["relay"]), relay_problem=str(alert["problem"]), relay_at_ms=int(alert["at_ms"])
        )
    listen = relay_address.announced(st)  # a township: where its villages reach its relay, '' for nowhere
    if listen is not None:
        body = dataclasses.replace(body, relay_url=listen)
    return sign_message(body, signer=st.code, recipient=st.hub_id, signing_key=st.keys.sign).frame


# -- by hand ---------------------------------------------------------------------------------------


def claim_file(st: Station) -> bytes:
    return encode_claim(st.code, st.keys.sign_pub, st.keys.seal_pub, st.meta.bytes("enrol_proof"))
