"""An operator reviews what ingest held back: release a held change, or reject it with a reason.

Quarantined data is authentic (the station's signature checked out) but failed a policy check: a
clock far ahead of the hub's, a field outside the station's rights, a record it does not own. It is
kept, never dropped, until an operator decides. Releasing applies the held change through the normal
record path (validated again, logged, merged, fanned out) exactly as if ingest had admitted it.
Whole batches held as forks or unreadable bodies cannot be released change by change: they point at
a cloned or damaged station, which needs re-enrolment, so they can only be rejected here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.feed import fan_out
from protocol.codec import unpack
from protocol.errors import RemoteProtocolError
from replica.errors import Refused
from sync.change import change_from_wire
from sync.hlc import HUB_QUARANTINE_AHEAD_MS
from sync.identity import mask_id, mask_phone
from sync.model import ModelError

if TYPE_CHECKING:
    from hub.service import Hub


def describe_held(raw: bytes) -> dict[str, object] | None:
    """What a held change would write, masked for the screen; None when it cannot be read at all."""
    try:
        wire = unpack(raw)
    except RemoteProtocolError:
        return None
    if not isinstance(wire, list) or len(wire) != 8 or not isinstance(wire[6], dict):
        return None
    fields = dict(wire[6])
    for key, mask in (("applicant_id", mask_id), ("applicant_phone", mask_phone)):
        if key in fields:
            fields[key] = mask(str(fields[key]))
    return {"entity": wire[4], "id": wire[5], "hlc_ms": wire[3] >> 16 if isinstance(wire[3], int) else None,
            "fields": fields}


def _open_row(hub: Hub, qid: int) -> tuple[str, int, int, bytes, bool]:
    row = hub.store.conn.execute(
        "SELECT origin, epoch, seq, raw, whole_batch, state FROM quarantine WHERE id=?", (qid,)
    ).fetchone()
    if row is None:
        raise Refused(f"没有编号为 {qid} 的隔离记录 (no such quarantined item)")
    if row[5] != "open":
        raise Refused(f"隔离记录 {qid} 已处理（{row[5]}） (already settled)")
    return str(row[0]), int(row[1]), int(row[2]), bytes(row[3]), bool(row[4])


def release(hub: Hub, qid: int, *, by: str, note: str = "") -> dict[str, object]:
    """Apply a held change as ingest would have. Call outside a transaction."""
    origin, epoch, seq, raw, whole = _open_row(hub, qid)
    if whole:
        raise Refused("整批隔离（分叉或无法解读）不能放行，只能驳回；请核查该站点并重新接入")
    try:
        change = change_from_wire(unpack(raw))
    except (ModelError, RemoteProtocolError) as exc:
        raise Refused(f"该变更无法解读，不能放行，只能驳回：{exc}") from exc
    if (change.origin, change.epoch, change.seq) != (origin, epoch, seq):
        raise Refused("该变更的来源与所在批次不符，不能放行，只能驳回")
    with hub.store.transaction():
        result = hub.records.apply([change])
        fan_out(hub, result.logged)
        # The hub's clock follows what it admits, so its later decisions come after this change; but a
        # change held for a clock far ahead must not drag the hub's clock into the future with it.
        if (change.hlc >> 16) <= hub.clock() + HUB_QUARANTINE_AHEAD_MS:
            hub.observe_hlc(change.hlc)
        hub.store.conn.execute("UPDATE quarantine SET state='released', note=? WHERE id=?",
                               (f"放行（{by}）" + (f"：{note}" if note else ""), qid))
    return {"id": qid, "state": "released", "applied": result.applied, "conflicts": len(result.conflicts)}


def reject(hub: Hub, qid: int, *, by: str, reason: str) -> dict[str, object]:
    reason = reason.strip()
    if not reason:
        raise Refused("驳回须填写理由 (a reason is required)")
    _open_row(hub, qid)
    with hub.store.transaction():
        hub.store.conn.execute("UPDATE quarantine SET state='rejected', note=? WHERE id=?",
                               (f"驳回（{by}）：{reason[:500]}", qid))
    return {"id": qid, "state": "rejected"}
