"""An operator reviews what ingest held back: release a held change, or reject it with a reason.

Quarantined data is authentic (the station's signature checked out) but failed a policy check: a
clock far ahead of the hub's, a field outside the station's rights, a record it does not own. It is
kept, never dropped, until an operator decides. Releasing writes what the held change would
have written as a new hub change by the operator, through the same admission question; the held
change itself, and the origin and seq it claims, are not applied (one exception, below).
Whole batches held as forks or unreadable bodies cannot be released change by change: they point at
a cloned or damaged station, which needs re-enrolment, so they can only be rejected here.

A change held because the personal values its station sealed to the hub did not open (``hub_seal``,
a ten-element wire change) was never judged. It is released as ingest would have taken it: opened
with the hub's sealing keys, current then retired (``hub/seal_keys.py``), checked against its masks,
its tracking code taken out, then asked ingest's admission question with its origin's authority;
admitted, and held as its origin sent it in its own signed batch, it is applied as it is (the
exception), else written as a hub change like any other release. One that still does not open can
only be rejected.

A password changed at a station (entity ``staff``) is released the way ingest takes a fresh one: asked
the same admission question with its station's authority and, admitted, applied as it is, its hash
taken by the hub's account when the ``password_version`` rule says so (``_staff_applied``); refused
again, it stays held. Only one its own station signed and sent can be released.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import seal_keys
from hub.admission import Gate
from hub.feed import Lookup, fan_out
from hub.operations import approval_item
from hub.sealed_changes import open_change
from hub.staff import take_station_change
from hub.tracking import Concealer
from protocol.codec import unpack
from protocol.errors import RemoteProtocolError
from replica import approval
from replica.errors import Refused
from replica.ids import uuid7
from sync import sealed_value
from sync.change import Change, change_from_wire
from sync.fold import values, versions
from sync.identity import mask_id, mask_phone
from sync.model import ModelError
from sync.staff_change import STAFF_ENTITY
from sync.workflow import Status

if TYPE_CHECKING:
    from hub.service import Hub


def describe_held(raw: bytes) -> dict[str, object] | None:
    """What a held change would write, masked for the screen; None when it cannot be read at all."""
    try:
        wire = unpack(raw)
    except RemoteProtocolError:
        return None
    if not isinstance(wire, list) or len(wire) not in (8, 9, 10) or not isinstance(wire[6], dict):
        return None
    fields = dict(wire[6])
    for key, mask in (("applicant_id", mask_id), ("applicant_phone", mask_phone)):
        if key in fields and not sealed_value.is_sealed(fields[key]):
            fields[key] = mask(str(fields[key]))
    # A change whose personal values were sealed to the hub and did not open carries their masks.
    fields = {k: sealed_value.mask_of(v) for k, v in fields.items()}
    return {
        "entity": wire[4],
        "id": wire[5],
        "hlc_ms": wire[3] >> 16 if isinstance(wire[3], int) else None,
        "fields": fields,
    }


def _open_row(hub: Hub, qid: int) -> tuple[str, int, int, bytes, bool]:
    row = hub.store.held_entry(qid)
    if row is None:
        raise Refused(f"没有编号为 {qid} 的隔离记录 (no such quarantined item)")
    if row.state != "open":
        raise Refused(f"隔离记录 {qid} 已处理（{row.state}） (already settled)")
    return row.origin, row.epoch, row.seq, row.raw, row.whole_batch


def release(
    hub: Hub, qid: int, *, by: str, note: str = "", also: Callable[[Change], object] | None = None
) -> dict[str, object]:
    """Make what a held change would write, as a new hub change by the releasing operator.

    The held change itself is not applied: its claimed origin and seq may be forged (a change
    re-sent on another's behalf), and the hub's authority must not flow to a station's words. (The one
    exception: a change held only because its hub seal did not open, in its origin's own signed batch,
    was never judged; opened now and admitted as ingest would, it is applied as it is.) The new
    change asks the same admission question as everything else, from the record as it stands now, so
    an operator cannot release a move the workflow does not have (the held row can still be rejected).
    ``also(change)`` runs inside the same transaction with the new hub change (the dashboard's audit
    row: a release is never without its record). Call outside a transaction."""
    origin, epoch, seq, raw, whole = _open_row(hub, qid)
    if whole:
        raise Refused("整批隔离（分叉或无法解读）不能放行，只能驳回；请核查该站点并重新接入")
    concealer = Concealer(hub)
    try:
        wire = unpack(raw)
        held = change_from_wire(_opened(hub, concealer, wire))
    except (ModelError, RemoteProtocolError) as exc:
        raise Refused(f"该变更无法解读，不能放行，只能驳回：{exc}") from exc
    if (held.origin, held.epoch, held.seq) != (origin, epoch, seq):
        raise Refused("该变更的来源与所在批次不符，不能放行，只能驳回")
    # Held only because its seal did not open (a ten-element change in its origin's own batch): it was
    # never judged, so it is judged now as ingest would have, and applied as it is when admitted.
    as_sent = hub.store.held_as_sent(origin, epoch, seq) == raw
    unjudged = isinstance(wire, list) and len(wire) == 10 and as_sent
    staff = held.entity == STAFF_ENTITY
    if staff and not as_sent:
        raise Refused(NOT_AS_SENT, code="staff_not_as_sent")
    with hub.store.transaction():
        if staff:
            made, how = held, _staff_applied(hub, held)
        elif unjudged and _applied_as_sent(hub, held):
            made, how = held, "解开后经准入检查，按原样应用"
        else:
            made = _written(hub, held, by=by, note=note)
            how = f"区局以新变更 {made.seq} 写入"
        concealer.index(held)  # a tracking code still in the held change is findable, as at ingest
        hub.store.settle_held(qid, "released", f"放行（{by}），{how}" + (f"：{note}" if note else ""))
        if also is not None:
            also(made)
        rejudged = rejudge_waiting(hub)
    return {
        "id": qid,
        "state": "released",
        "applied": 1,
        "conflicts": 0,
        "rejudged": rejudged,
        "change": {"origin": made.origin, "epoch": made.epoch, "seq": made.seq},
    }


def _applied_as_sent(hub: Hub, held: Change) -> bool:
    """The origin's own change, asked the admission question ingest asks (with the origin's
    authority, from the record as it stands now) and applied as it is when admitted. Call inside a
    transaction."""
    gate = Gate(hub, Lookup(hub))
    if not gate.ask(held, gate.actor(held.origin), now_ms=hub.clock()).admitted:
        return False
    fan_out(hub, hub.records.apply([held]).logged)
    hub.observe_hlc(held.hlc)
    return True


NOT_AS_SENT = (
    "这一密码变更不是其站点本身签名送来的，无法核验，不能放行，只能驳回 "
    "(a password change is released only as its own station signed and sent it)"
)


def _staff_applied(hub: Hub, held: Change) -> str:
    """A password changed at a station (``sync/staff_change.py``), released: it takes exactly ingest's
    path for a fresh one, the same admission question with its station's authority (clock included)
    and the same ``password_version`` rule at the account (``hub.staff.take_station_change``). Never
    written as a hub change: the hub's own authority is not "the person or the station's
    administrator". Refused again, it stays held (``Refused`` with the new reason; the caller's
    transaction rolls back). How it went, for the row's note. Call inside a transaction."""
    gate = Gate(hub, Lookup(hub))
    verdict = gate.ask(held, gate.actor(held.origin), now_ms=hub.clock())
    if not verdict.admitted:
        raise Refused(f"放行时复核该密码变更仍未通过，仍留在隔离区待审（可驳回）：{verdict.reason}", code=verdict.code)
    fan_out(hub, hub.records.apply([held]).logged)
    taken = take_station_change(hub, held)
    hub.observe_hlc(held.hlc)
    if taken is None:
        return "经准入检查，按原样应用；区局此后已自行设置该账户密码，以区局的为准"
    return f"经准入检查，按原样应用，区局账户已采用新密码（版本 {taken}）"


def _written(hub: Hub, held: Change, *, by: str, note: str) -> Change:
    """What the held change would write, as a new hub change: asked the admission question as the
    hub's own. Call inside a transaction."""
    record = hub.records.load(held.entity, held.id)
    seen = versions(record)
    if held.entity == "application" and held.fields.get("status") == Status.APPROVED.value:
        # Releasing an approval of an item still waiting for its inspection report is the operator's
        # override: written, with the release's reason, before the decision (replica/approval.py).
        override = approval.override_event(
            hub.records,
            approval_item(hub, record),
            held.id,
            str(values(record).get("number", held.id)),
            current=str(values(record).get("status", "")),
            override_reason=note,
            actor=by,
            how="放行时请在理由栏说明为何不经踏勘准予",
        )
        if override is not None:
            hub.write("event", uuid7(), override, {})
    try:
        return hub.write(held.entity, held.id, dict(held.fields), {n: seen.get(n, 0) for n in held.fields})
    except Refused as exc:
        raise Refused(f"放行后的变更也不符合规则，只能驳回：{exc}", code=exc.code) from exc


def _opened(hub: Hub, concealer: Concealer, wire: object) -> object:
    """The held wire change as ingest would judge it: personal values sealed to the hub opened with
    the same keys (current, then retired: hub/seal_keys.py) and checked against their masks, then the
    tracking code taken out. A seal that still does not open cannot be released, only rejected."""
    opened, why = open_change(wire, seal_keys.sealing_keys(hub))
    if why:
        raise Refused(f"该变更中加密给区局的个人信息仍无法解开，不能放行，只能驳回：{why}", code="hub_seal")
    return concealer.wire([opened])[0]


# Refusals that another change's release can lift: what the change builds on was held, or not there yet.
WAITING = ("builds_on_held", "unknown_base", "unknown_application", "rating_too_early")


def rejudge_waiting(hub: Hub) -> int:
    """Ask the admission question again of the held changes that were waiting for another one; apply, as
    they are, those now admitted. They are the stations' own authentic changes (never ones re-sent on
    another's behalf), so applying them is what ingest would have done had they come later. Repeats
    until nothing more is admitted (a chain of waiting changes). Call inside a transaction."""
    now, applied = hub.clock(), 0
    progress = True
    while progress:
        progress = False
        gate = Gate(hub, Lookup(hub))
        for qid, origin, epoch, seq, raw in hub.store.waiting_changes(WAITING):
            try:
                change = change_from_wire(unpack(raw))
            except (ModelError, RemoteProtocolError):
                continue
            if change.key != (origin, epoch, seq) or not gate.ask(change, gate.actor(origin), now_ms=now).admitted:
                continue
            fan_out(hub, hub.records.apply([change]).logged)
            hub.observe_hlc(change.hlc)
            hub.store.settle_held(
                qid, "released", "所依据的变更放行后复核通过，按原样应用 (admitted once what it builds on was released)"
            )
            applied += 1
            progress = True
    return applied


def reject(hub: Hub, qid: int, *, by: str, reason: str, also: Callable[[], object] | None = None) -> dict[str, object]:
    reason = reason.strip()
    if not reason:
        raise Refused("驳回须填写理由 (a reason is required)")
    _open_row(hub, qid)
    with hub.store.transaction():
        hub.store.settle_held(qid, "rejected", f"驳回（{by}）：{reason[:500]}")
        if also is not None:
            also()
    return {"id": qid, "state": "rejected"}


# Ingest states its reasons in English (sync/ingest.py); the operator reads a Chinese gloss first.
QUARANTINE_GLOSS = (
    ("outside the station's rights", "超出站点权限"),
    ("clock ahead", "站点时钟超前于区局"),
    ("refers to an application the hub does not hold", "引用了区局没有的办件"),
    ("invalid change", "变更格式无效"),
    ("fork", "分叉：同一序号出现不同内容（疑似克隆或从备份恢复的站点）"),
    ("unreadable body", "批次内容无法解读"),
)


def gloss(reason: str) -> str:
    return next((zh for key, zh in QUARANTINE_GLOSS if key in reason), "")


def quarantine_rows(hub: Hub, *, origin: str | None = None, include_closed: bool = False) -> list[dict[str, Any]]:
    """The held changes, open ones first, newest first, each with a Chinese gloss of its reason and what it
    would change: what ``sanji hub quarantine`` prints and the dashboard shows."""
    # A station's rows are what it sent, including changes it re-sent claiming another origin.
    rows = hub.store.quarantine_listing(sender=origin, include_closed=include_closed, limit=500)
    return [quarantine_row(*r) for r in rows]


def quarantine_row(
    qid: int,
    org: str,
    epoch: int,
    seq: int,
    reason: str,
    created: int,
    whole: int,
    state: str,
    note: str,
    raw: bytes,
    code: str,
    sender: str,
) -> dict[str, Any]:
    """One held change as the CLI prints it and the dashboard shows it."""
    sent_by = str(sender or org)
    return {
        "id": qid,
        "origin": org,
        "epoch": epoch,
        "seq": seq,
        "reason": reason,
        "gloss": gloss(reason),
        "created_ms": created,
        "code": code,
        "sender": sent_by,
        # Only the origin's own signed batch vouches for a change; one re-sent by another
        # station (reconciliation) carries the sender's signature alone.
        "relayed": sent_by != org,
        "whole_batch": bool(whole),
        "state": state,
        "note": note,
        "content": None if whole else describe_held(bytes(raw)),
    }


# The listing's states as operators say them; --json keeps the codes.
STATE_WORDS = {"open": "待审", "released": "已放行", "rejected": "已驳回"}


def listing_text(d: dict[str, Any]) -> str:
    """``sanji hub quarantine`` without ``--json``."""
    lines = []
    for r in d["quarantined"]:
        who = (
            f"{r['sender']} 转交，声称来自 {r['origin']}（签名无法核验）"
            if r["relayed"]
            else f"{r['origin']} 第 {r['epoch']} 代 第 {r['seq']} 号"
        )
        state = STATE_WORDS.get(r["state"], r["state"])
        lines.append(f"#{r['id']} [{state}] {r['code'] or '-'}  {who}\n    {r['reason']}")
    return "\n".join(lines) or "（没有隔离待审的变更）"
