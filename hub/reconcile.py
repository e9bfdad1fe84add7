"""The hub's side of anti-entropy with one station (the station initiates; it is often behind NAT).

Scope of station S at the hub: every change S authored that the hub holds (applied or held in
quarantine) plus every change in S's feed. The station's log should hold exactly the same set. The
conversation, all in signed documents (the answers sealed to the station, since they carry citizens'
data):
1. ``merkle``: Merkle requests answered from a tree of the scope (cached for the session), until the
   station knows which records differ;
2. ``records``: the hub's changes for those records; the station applies the ones it lacks;
3. ``repair``: the station's own changes the hub lacks, re-sent signed; they go through the same
   admission as any batch (rights, clock), so nothing is overwritten silently. Changes of other
   origins that the hub lacks cannot be authenticated one by one, so they are quarantined for an
   operator instead of applied (with their hub seals intact when their values are sealed);
4. ``done``: the station's figures, recorded for the morning report; the answer carries a signed
   summary of the station's applications by status so the station can compare it with its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub import scope_leaves, seal_keys
from hub.admission import Gate
from hub.feed import Lookup, fan_out
from hub.reconcile_scope import records_for
from hub.sealed_changes import code_for, open_change
from hub.staff import take_station_change
from hub.tracking import Concealer
from protocol.codec import pack
from protocol.errors import MalformedError
from protocol.keys import key_id, load_seal_public
from protocol.reconciliation import (
    MerkleAnswer,
    ReconcileRequest,
    RecordsAnswer,
    RepairAnswer,
    Summary,
    SummaryAnswer,
)
from protocol.wire import Message, sign_message
from replica.ids import iso_from_ms
from replica.scope import keys_of, row_to_wire
from sync.change import change_from_wire
from sync.merkle import MerkleTree, ReconcileError, answer, request_depth
from sync.model import ModelError
from sync.session import Cursor

if TYPE_CHECKING:
    from hub.service import Hub


@dataclass
class TreeCache:
    """One tree per station while its session lasts; rebuilt when the hub's data has moved on."""

    trees: dict[tuple[str, int], tuple[tuple[int, int], MerkleTree]] = field(default_factory=dict)


def _version(hub: Hub) -> tuple[int, int]:
    return hub.store.last_change_rowid(), hub.store.quarantine_size()


def tree_for(hub: Hub, cache: TreeCache, station: str, depth: int) -> MerkleTree:
    version = _version(hub)
    hit = cache.trees.get((station, depth))
    if hit is not None and hit[0] == version:
        return hit[1]
    tree = scope_leaves.tree(hub, station, depth)
    cache.trees = {k: v for k, v in cache.trees.items() if k[0] != station}  # one tree per station at most
    cache.trees[(station, depth)] = (version, tree)
    return tree


def _held(hub: Hub, origin: str, epoch: int, seq: int) -> bool:
    """Whether the hub holds this change from its origin: applied, or held in quarantine as the origin
    sent it. A copy another station re-sent on its behalf (held under that sender) does not count: it
    must not stop the origin's own authentic copy, nor move the origin's cursor past it."""
    return hub.store.is_logged(origin, epoch, seq) or hub.store.held_as_sent(origin, epoch, seq) is not None


def repair(hub: Hub, station: str, body: ReconcileRequest) -> RepairAnswer:
    """Take re-sent changes. Own ones are admitted like any batch; foreign ones are held for review."""
    now = hub.clock()
    applied = held = skipped = 0
    concealer = Concealer(hub)  # tracking codes leave re-sent changes before anything is judged or kept
    # Personal values a station seals at rest come sealed to us: opened before anything else looks.
    keys = seal_keys.sealing_keys(hub)  # the current sealing key, then those a rotation retired
    opened = [open_change(raw, keys) for raw in body.changes]
    own, foreign = concealer.wire([raw for raw, _ in opened]), concealer.wire(list(body.foreign))
    unopened = {id(raw): why for raw, (_r, why) in zip(own, opened, strict=True) if why}
    gate = Gate(hub, Lookup(hub))
    actor = gate.actor(station)
    with hub.store.transaction():
        for raw in own:
            if id(raw) in unopened:
                got = _hold_unopened(hub, station, raw, unopened[id(raw)], now)
                held, skipped = held + got, skipped + (not got)
                continue
            try:
                change = change_from_wire(raw)
            except ModelError as exc:
                hub.store.quarantine(
                    station,
                    0,
                    0,
                    b"",
                    pack(raw),
                    f"对账补传：无法解读的变更 (repair: invalid change: {exc})",
                    now,
                    code="invalid",
                    sender=station,
                )
                held += 1
                continue
            if change.origin != station:
                raise MalformedError("a station may re-send only its own changes as its own")
            if _held(hub, change.origin, change.epoch, change.seq):
                skipped += 1
                continue
            adm = gate.ask(change, actor, now_ms=now)
            if adm.admitted:
                concealer.index(change)
                fan_out(hub, hub.records.apply([change]).logged)
                take_station_change(hub, change)  # a password changed at the station (hub/staff.py)
                hub.observe_hlc(change.hlc)
                applied += 1
            else:
                hub.store.quarantine(
                    change.origin,
                    change.epoch,
                    change.seq,
                    b"",
                    pack(raw),
                    f"对账补传：{adm.reason}",
                    now,
                    code=adm.code,
                    sender=station,
                )
                held += 1
        for raw in foreign:
            if _held_from(hub, station, raw):
                skipped += 1
                continue
            hold_foreign(hub, station, raw, keys, now)
            held += 1
        _fast_forward(hub, station, body.chain)
    return RepairAnswer(applied, held, skipped)


def _hold_unopened(hub: Hub, station: str, raw: object, why: str, now: int) -> bool:
    """Hold one of the station's own re-sent changes whose sealed values do not open (or were minimised
    away, ``minimised``), at the place of the chain it claims, as ingest holds one from a batch, so
    that a release can open and apply it as its origin sent it (hub/quarantine_review.py); held once,
    however often it is re-sent. False when it is held already. Call inside a transaction."""
    where = _claimed(raw, station)
    if where[0] != station or where[2] == 0:
        where = (station, 0, 0)  # not ours as claimed: held like an unreadable change
    elif _held(hub, *where):
        return False
    hub.store.quarantine(*where, b"", pack(raw), f"对账补传：{why}", now, code=code_for(why), sender=station)
    return True


def hold_foreign(hub: Hub, station: str, raw: object, keys: seal_keys.Keys, now: int) -> None:
    """Hold one change of another origin that ``station`` re-sent. Only the origin's own signed batch
    can vouch for a change; this one is vouched for by the sender alone. It is held under the sender's
    name: releasing it makes a new hub change by the operator, so it can never take the claimed
    origin's place or seq (hub/quarantine_review.py). It is held as it came, its hub seal intact (the
    hub keeps no opened copy of what it has not taken): it is opened here only to be read and checked,
    and release opens it again. Nothing is dropped: a change that does not open or read is held too,
    with why. Call inside a transaction."""
    opened, why = open_change(raw, keys)
    code = "foreign_origin"
    try:
        change = change_from_wire(opened) if not why else None
    except ModelError as exc:
        change, why, code = None, f"变更格式无效 (invalid change: {exc})", "invalid"
    if change is not None and change.origin == station:
        raise MalformedError("a station's own changes go in 'changes', not 'foreign'")
    where = _claimed(raw, station) if change is None else (change.origin, change.epoch, change.seq)
    tell = f"由 {station} 在对账时转交，声称来自 {where[0]}，无法核验来源签名，需人工核实"
    reason = f"{tell} (re-sent by {station} during reconciliation; only its origin can vouch for it)"
    if why:
        code = code_for(why) if code != "invalid" else code
        reason = f"{tell}；{why}"
    hub.store.quarantine(*where, b"", pack(raw), reason, now, code=code, sender=station)


def _claimed(raw: object, sender: str) -> tuple[str, int, int]:
    """The origin, epoch and seq a change that does not read claims, as far as they can be read (else
    held under the sender, as an unreadable change of its own is)."""
    if isinstance(raw, list) and len(raw) >= 3:
        origin, epoch, seq = raw[0], raw[1], raw[2]
        if isinstance(origin, str) and type(epoch) is int and type(seq) is int:
            return origin[:64], epoch, seq
    return sender, 0, 0


def _held_from(hub: Hub, sender: str, raw: object) -> bool:
    """The same re-sent change from the same sender is held once, however often it is re-sent."""
    return hub.store.holds_relayed(sender, pack(raw))


def _fast_forward(hub: Hub, station: str, chain: object) -> None:
    """After a repair the hub may hold a contiguous run beyond its cursor: move the cursor there, so
    the station's next batch chains on instead of being answered with a gap."""
    if not isinstance(chain, dict):
        return
    epoch, last, bhash = chain.get("epoch"), chain.get("batched_seq"), chain.get("hash")
    if not (isinstance(epoch, int) and isinstance(last, int) and isinstance(bhash, bytes) and len(bhash) == 32):
        return
    cursor = hub.store.cursor(station, epoch)
    if last < cursor.next_seq:
        return
    held = hub.store.held_seqs_between(station, epoch, cursor.next_seq, last)
    if held == last - cursor.next_seq + 1:
        hub.store.set_cursor(station, epoch, Cursor(last + 1, bhash))


def summary(hub: Hub, station: str) -> bytes:
    """A hub-signed count of the station's applications by status, for the station to check."""
    return sign_message(
        Summary(station, iso_from_ms(hub.clock()), hub.store.status_counts(station)),
        signer=hub.hub_id,
        recipient=station,
        signing_key=hub.keys.sign,
    ).frame


def record_session(hub: Hub, station: str, body: ReconcileRequest) -> None:
    with hub.store.transaction():
        hub.store.record_reconciliation(
            station,
            hub.clock(),
            buckets=body.buckets_compared,
            divergent=body.divergent,
            repaired=body.repaired,
            size=body.bytes,
            summary_match=body.summary_match,
        )


def handle(hub: Hub, cache: TreeCache, station: str, body: ReconcileRequest) -> bytes:
    """One reconcile request from ``station`` (its op already checked): returns the signed, sealed answer."""
    op = body.op
    result: Message
    if op == "merkle":
        request = body.request
        try:
            tree = tree_for(hub, cache, station, request_depth(request))
            result = MerkleAnswer(answer(tree, request))
        except ReconcileError as exc:
            raise MalformedError(f"malformed Merkle request: {exc}") from exc
    elif op == "records":
        rows = records_for(hub, station, list(body.keys))
        held = sorted((str(k[0]), int(k[1]), int(k[2])) for k in keys_of(rows))
        result = RecordsAnswer(tuple(row_to_wire(r) for r in rows), tuple(held))
    elif op == "repair":
        result = repair(hub, station, body)
    elif op == "done":
        record_session(hub, station, body)
        cache.trees = {k: v for k, v in cache.trees.items() if k[0] != station}
        result = SummaryAnswer(summary(hub, station))
    else:  # "summary"
        result = SummaryAnswer(summary(hub, station))
    st = hub.store.station(station)
    seal = st.seal_pub if st is not None else None
    return sign_message(
        result,
        signer=hub.hub_id,
        recipient=station,
        signing_key=hub.keys.sign,
        seal_to=load_seal_public(seal) if seal else None,
        recipient_key=key_id(seal) if seal else "",
    ).frame
