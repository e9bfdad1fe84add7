"""Every on-site inspection (现场踏勘) at the hub in one list: what ``sanji hub inspections`` prints and
the dashboard's ``/inspections`` page shows (``hub/dashboard_inspection_list.py``).

One row per task record, newest first (task ids are UUIDv7): the application's number and current
status, the item, the field device, when the task was assigned and is due, whether it is still open
or overdue, the report's result and when it was recorded, how many photos it names and which of its
files (photos and signature) the hub does not hold yet. Nothing about the citizen (name, ID number,
phone, address) is in a row: this is an operations list, and the task's own copy of the address and
phone stays out of it.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from hub import blobindex
from replica.ids import iso_from_ms
from replica.inspection import day_of
from sync.hlc import wall_ms
from sync.inspection import TASK_ASSIGNED, TASK_DONE

if TYPE_CHECKING:
    from hub.service import Hub

LIMIT = 200
RESULT_LABELS = {"pass": "合格", "fail": "不合格", "rectify": "需整改"}
TASK_LABELS = {TASK_ASSIGNED: "待踏勘", TASK_DONE: "已提交报告"}


def assigned(hub: Hub, task_id: str) -> tuple[str, str]:
    """When the task was assigned and by whom: the stamp and origin of its first write."""
    record = hub.records.load("task", task_id)
    if not record:
        return "", ""
    hlc, origin = min((cell[0], cell[1]) for cell in record.values())
    return iso_from_ms(wall_ms(hlc)), origin


def is_overdue(task: dict[str, object], today: date) -> bool:
    """An assigned task whose due date (YYYY-MM-DD) is before ``today``."""
    if task.get("status") != TASK_ASSIGNED:
        return False
    try:
        return date.fromisoformat(str(task.get("due") or "")) < today
    except ValueError:
        return False


def list_inspections(
    hub: Hub,
    *,
    missing_only: bool = False,
    open_only: bool = False,
    overdue_only: bool = False,
    limit: int | None = LIMIT,
) -> list[dict[str, Any]]:
    """Every inspection task at the hub, newest first, at most ``limit`` of them (``None``: all).
    ``missing_only``: only tasks whose report names files the hub lacks; ``open_only``: only tasks
    still awaiting their report; ``overdue_only``: only those past their due date (China time, by the
    hub's clock). Filters apply before the limit."""
    blobindex.store_of(hub)  # the blob index tables, before anything reads them
    today = day_of(hub.clock())
    items = hub.catalogue()[1].items
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    rows = hub.store.conn.execute("SELECT id, application FROM records WHERE entity='task' ORDER BY id DESC")
    for task_id, app_id in rows.fetchall():
        if limit is not None and len(out) >= limit:
            break
        task = hub.records.values("task", str(task_id))
        status = str(task.get("status") or "")
        overdue = is_overdue(task, today)
        if (open_only and status != TASK_ASSIGNED) or (overdue_only and not overdue):
            continue
        report = hub.records.values("report", str(task_id))
        missing = blobindex.missing(hub, blobindex.blobs_of(report)) if report else []
        if missing_only and not missing:
            continue
        inspector = str(task.get("inspector") or "")
        if inspector not in names:
            station = hub.store.station(inspector)
            names[inspector] = station.name if station is not None else ""
        item = str(task.get("item") or "")
        photos = report.get("photos") if report else None
        application = hub.records.values("application", str(app_id))
        out.append(
            {
                "task": str(task_id),
                "number": str(task.get("number") or application.get("number") or ""),
                "item": item,
                "item_name": items[item].name if item in items else "",
                "inspector": inspector,
                "inspector_name": names[inspector],
                "assigned_at": assigned(hub, str(task_id))[0],
                "due": str(task.get("due") or ""),
                "status": status,
                "overdue": overdue,
                "result": str(report["result"]) if report.get("result") else None,
                "recorded_at": str(report["recorded_at"]) if report.get("recorded_at") else None,
                "photos": len([p for p in photos if isinstance(p, str)]) if isinstance(photos, list) else 0,
                "missing_blobs": missing,
                "application_status": str(application.get("status") or ""),
            }
        )
    return out
