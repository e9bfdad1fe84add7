"""需现场踏勘 before 准予许可: an item the catalogue marks for on-site inspection is approved only once an
inspection report is in, or on an explicit override with a reason.

Shared by the hub (``hub/operations.transition``: ``sanji hub transition`` and the dashboard's 准予许可
button) and a deciding township or street centre (``node/commands.transition``). The override is not a
silent flag: it is written as an event record on the application in the same transaction as the
decision, so it syncs, shows in the history everywhere, and stays in the application's audit trail
(DESIGN.md: events are the application's history and audit); the dashboard also writes its audit row.
"""

from __future__ import annotations

from replica.errors import Refused
from replica.records import RecordStore
from sync.catalogue import Item
from sync.inspection import APPROVE_WITHOUT_INSPECTION
from sync.model import MAX_TEXT

OVERRIDE_ACTION = APPROVE_WITHOUT_INSPECTION
MIN_REASON = 4


def has_report(records: RecordStore, app_id: str) -> bool:
    return any(entity == "report" for entity, _, _ in records.records_of(app_id))


def needs_inspection(records: RecordStore, item: Item | None, app_id: str) -> bool:
    """Whether approving now would skip the inspection the catalogue asks for."""
    return item is not None and item.inspection_required and not has_report(records, app_id)


def override_event(
    records: RecordStore,
    item: Item | None,
    app_id: str,
    number: str,
    *,
    current: str,
    override_reason: str,
    actor: str,
    how: str,
) -> dict[str, object] | None:
    """``None`` when the approval may go ahead as it is; the override event's fields when it goes ahead
    on an override. Raises :class:`Refused` when it may not. ``how`` names the command to use."""
    if item is None or not needs_inspection(records, item, app_id):
        return None
    reason = override_reason.strip()
    if not reason:
        raise Refused(
            f"{number}: 「{item.name}」需现场踏勘，尚无踏勘报告，不能准予许可。请先安排踏勘并等报告同步回来；"
            f"确需不经踏勘准予的，{how}（理由记入审计记录）",
            code="inspection_required",
        )
    if len(reason) < MIN_REASON or len(reason) > MAX_TEXT:
        raise Refused(
            f"{number}: 不经踏勘准予的理由请写清楚（{MIN_REASON} 到 {MAX_TEXT} 字）", code="inspection_required"
        )
    return {
        "application": app_id,
        "action": OVERRIDE_ACTION,
        "actor": actor,
        "from_status": current,
        "to_status": "approved",
        "note": f"未经现场踏勘准予许可，理由：{reason}",
    }
