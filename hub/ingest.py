"""Ingest: signed batches in, acknowledgements and signed receipts out.

Order of work for each frame, whether it came over HTTP or on a USB stick:
1. verify the signature against the station's pinned key (revoked stations stop here) before
   anything is decrypted or unpacked; refusals are recorded with their reason;
2. classify it against the origin's cursor (apply, duplicate, gap, fork; see ``sync/session.py``);
3. decrypt and unpack the body with strict limits;
4. in one transaction: admit or quarantine each change, merge the admitted ones, fan them out to
   feeds, record the batch and its signed receipt, move the cursor.
A failure anywhere in 3–4 rolls the whole batch back: it is never half-applied.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub import relay_alerts, seal_keys, shared_state
from hub.admission import Gate
from hub.feed import Lookup, fan_out
from hub.sealed_changes import code_for, open_change
from hub.staff import take_station_change
from hub.tracking import Concealer
from protocol.acks import Ack, Receipt
from protocol.batch import VerifiedBatch, open_batch_changes, verify_batch
from protocol.codec import pack
from protocol.errors import RemoteProtocolError
from protocol.wire import sign_message
from replica.ids import iso_from_ms
from sync.change import Change
from sync.ingest import read_change
from sync.session import AckResult, Cursor, Verdict, classify

if TYPE_CHECKING:
    from hub.service import Hub


class UnsealedError(RemoteProtocolError):
    default_status = 403
    default_code = "unsealed"


@dataclass(frozen=True)
class FrameAck:
    batch: bytes  # header hash, b"" when the frame could not be authenticated
    origin: str
    result: AckResult
    expected_seq: int = 0
    reason: str = ""
    receipt: bytes = b""
    applied: int = 0
    quarantined: int = 0
    status: int = 200  # the HTTP status a lone refusal of this kind maps to

    def ack(self) -> Ack:
        """What the station is told (origin and status stay at the hub)."""
        return Ack(
            self.batch, self.result.value, self.expected_seq, self.reason, self.receipt, self.applied, self.quarantined
        )

    def to_wire(self) -> dict[str, object]:
        return self.ack().to_wire()


def ingest_frame(
    hub: Hub, frame: bytes, *, source: str, atomic: Callable[[], AbstractContextManager[object]] | None = None
) -> FrameAck:
    """Take one frame. ``atomic`` makes each write all-or-nothing: by default a transaction of its own;
    the group committer (``hub/committer.py``) passes a savepoint inside its shared transaction."""
    atomic = atomic or hub.store.transaction
    now = hub.clock()
    # Another process may have enrolled or revoked a station, or rotated the hub's key, meanwhile.
    shared_state.catch_up(hub)
    try:
        vb = verify_batch(frame, recipient=hub.hub_id, verify_key=hub.verify_key)
        if not vb.header.sealed and not hub.allow_unsealed:
            # Citizens' data travels sealed to the hub; an unsealed batch is either a test or a station
            # whose software was changed, and either way it is not taken in production.
            raise UnsealedError(
                "批次未加密，区局只接收加密批次 (unsealed batches are refused; stations seal every "
                "batch to the hub's key)"
            )
    except RemoteProtocolError as exc:
        origin = _claimed_origin(frame)
        with atomic():
            hub.store.reject(source, origin, f"{exc.code}: {exc}", now)
            if exc.code == "revoked":
                hub.store.alert("revoked_station_sent", origin, str(exc), now)
            relay_alerts.seen_refused(hub.store, source, origin, f"{exc.code}: {exc}", now)  # through a relay?
        return FrameAck(b"", origin, AckResult.REJECTED, reason=f"{exc.code}: {exc}", status=exc.status)
    with atomic():
        ack = _ingest_verified(hub, vb, frame, source=source, now=now)
        h = vb.header  # through a relay: another's batch, or a gap it opened, names the relay
        relay_alerts.seen_batch(hub.store, source, h.origin, ack.result, ack.expected_seq, h.first_seq, now)
        return ack


def _claimed_origin(frame: bytes) -> str:
    try:
        from protocol.frame import peek_header

        return str(peek_header(frame).get("signer", ""))[:64]
    except RemoteProtocolError:
        return ""


def _ingest_verified(hub: Hub, vb: VerifiedBatch, frame: bytes, *, source: str, now: int) -> FrameAck:
    h = vb.header
    bhash = vb.frame.header_hash
    store = hub.store
    cursor = store.cursor(h.origin, h.epoch)
    decision = classify(
        cursor,
        first_seq=h.first_seq,
        last_seq=h.last_seq,
        prev=h.prev,
        batch_hash=bhash,
        applied=store.applied_ranges(h.origin, h.epoch, h.first_seq, h.last_seq),
    )
    store.seen(h.origin, now, via=relay_alerts.path_of(source))
    if decision.verdict is Verdict.DUPLICATE:
        kept = store.batch_receipt(bhash)
        return FrameAck(bhash, h.origin, AckResult.DUPLICATE, cursor.next_seq, receipt=kept[1] if kept else b"")
    if decision.verdict is Verdict.GAP:
        return FrameAck(bhash, h.origin, AckResult.GAP, decision.expected_seq, reason=decision.reason)
    if decision.verdict is Verdict.FORK and _all_held_identically(hub, vb):
        # Re-cut boundaries over changes we already hold byte for byte (a station that rebuilt its
        # outbox, or a repair that ran first): nothing contradicts, so it is a duplicate.
        return FrameAck(bhash, h.origin, AckResult.DUPLICATE, cursor.next_seq)
    if decision.verdict is Verdict.FORK:
        # Authentic but contradicting what we hold: keep it whole, raise the alarm, move nothing.
        if not store.holds_whole_batch(bhash):
            store.quarantine(
                h.origin,
                h.epoch,
                h.first_seq,
                bhash,
                frame,
                f"fork: {decision.reason}",
                now,
                whole_batch=True,
                code="fork",
            )
            store.alert("fork", h.origin, f"epoch {h.epoch} seqs {h.first_seq}-{h.last_seq}: {decision.reason}", now)
        return FrameAck(bhash, h.origin, AckResult.FORK, decision.expected_seq, reason=decision.reason, status=409)

    admitted: list[Change] = []
    held = 0
    if h.horizon is not None:  # signed by the station: what it had received when it wrote these changes
        store.note_horizon(h.origin, h.epoch, h.horizon[0], h.horizon[1])
    concealer = Concealer(hub)
    try:
        # Citizens' tracking codes leave the changes here, before anything is judged or kept. Personal
        # values sealed to us open with the key they name, current or retired (hub/seal_keys.py).
        keys = seal_keys.sealing_keys(hub)
        opened = [open_change(r, keys) for r in open_batch_changes(vb, unseal_key=seal_keys.unseal_key(hub))]
        unopened = {i: why for i, (_r, why) in enumerate(opened) if why}
        raw_changes = concealer.wire([r for r, _why in opened])
    except RemoteProtocolError as exc:
        store.quarantine(
            h.origin,
            h.epoch,
            h.first_seq,
            bhash,
            frame,
            f"unreadable body: {exc}",
            now,
            whole_batch=True,
            code="unreadable",
        )
        raw_changes = []
        unopened = {}
        held = h.count
    # Apply as we go, so a later change in the batch sees the record an earlier one created; the run
    # keeps merged records in memory and writes each one once, when the batch is done.
    run = hub.records.run()
    look = Lookup(hub, run)
    gate = Gate(hub, look)
    actor = gate.actor(h.origin)
    keys = [
        (r[4], r[5])
        for r in raw_changes
        if isinstance(r, list) and len(r) in (8, 9) and isinstance(r[4], str) and isinstance(r[5], str)
    ]
    run.prefetch(keys)
    look.prefetch_owners(rec_id for entity, rec_id in keys if entity == "application")
    for offset, raw in enumerate(raw_changes):
        seq = h.first_seq + offset
        if offset in unopened:  # personal values sealed to us that do not open or match: held, not lost
            why = unopened[offset]
            store.quarantine(h.origin, h.epoch, seq, bhash, pack(raw), why, now, code=code_for(why))
            held += 1
            continue
        adm = read_change(raw, origin=h.origin, epoch=h.epoch, seq=seq)
        if adm.admitted and adm.change is not None:
            adm = gate.ask(adm.change, actor, now_ms=now)
        if adm.admitted and adm.change is not None:
            admitted.append(adm.change)
            concealer.index(adm.change)
            entry = run.add(adm.change)
            if entry is not None:
                fan_out(hub, [entry], look)
            take_station_change(hub, adm.change)  # a password changed at the station (hub/staff.py)
        else:
            store.quarantine(h.origin, h.epoch, seq, bhash, pack(raw), adm.reason, now, code=adm.code)
            held += 1
    run.finish()
    if admitted:
        hub.observe_hlc(max(c.hlc for c in admitted))
    result_name = AckResult.APPLIED if held == 0 else AckResult.QUARANTINED
    receipt = sign_message(
        Receipt(
            bhash,
            h.origin,
            h.epoch,
            h.first_seq,
            h.last_seq,
            len(admitted),
            held,
            hub.hub_id,
            hub.name,
            iso_from_ms(now),
        ),
        signer=hub.hub_id,
        recipient=h.origin,
        signing_key=hub.keys.sign,
    ).frame
    store.record_batch(
        bhash,
        h.origin,
        h.epoch,
        h.first_seq,
        h.last_seq,
        now_ms=now,
        result=result_name.value,
        applied=len(admitted),
        quarantined=held,
        receipt=receipt,
        source=source,
    )
    store.set_cursor(h.origin, h.epoch, Cursor(h.last_seq + 1, bhash))
    return FrameAck(
        bhash,
        h.origin,
        result_name,
        h.last_seq + 1,
        receipt=receipt,
        applied=len(admitted),
        quarantined=held,
        reason="" if held == 0 else f"{held} 条变更暂存待区局核对 (held for review)",
    )


def _all_held_identically(hub: Hub, vb: VerifiedBatch) -> bool:
    """True when every change of the batch is already held with exactly the same content."""
    h = vb.header
    try:
        keys = seal_keys.sealing_keys(hub)
        opened = [open_change(r, keys) for r in open_batch_changes(vb, unseal_key=seal_keys.unseal_key(hub))]
        raw_changes = Concealer(hub).wire([r for r, _why in opened])
    except RemoteProtocolError:
        return False
    if any(why for _r, why in opened):
        return False
    store = hub.store
    for offset, raw in enumerate(raw_changes):
        adm = read_change(raw, origin=h.origin, epoch=h.epoch, seq=h.first_seq + offset)
        c = adm.change
        if c is None or adm.reason:
            return False
        logged = store.logged_change(c.origin, c.epoch, c.seq)
        if logged is None:
            # held as its origin sent it: a copy another station re-sent proves nothing
            if store.held_as_sent(c.origin, c.epoch, c.seq) != pack(raw):
                return False
            continue
        if tuple(logged) != (c.hlc, c.entity, c.id, pack(dict(c.fields)), pack(dict(c.base))):
            return False
    return True
