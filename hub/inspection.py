"""The hub's side of on-site inspections (现场踏勘): assigning them to field devices it has enrolled, and
listing every one of them.

``sanji hub inspect`` writes one ``task`` record (a fresh UUIDv7) through :meth:`Hub.write`, so the
change is logged and fanned out like any other: to the field device named as inspector (``hub/feed.py``
sends it task and report changes only), to the station that accepted the application, and to the
township that decides the item. The task carries what the inspector needs to find the place and do
the job (application id and number, item, address, the applicant's phone, due date, checklist) and
nothing else about the citizen. The rules the hub shares with a township that assigns its own
inspections (refusals, the pause, the due date moving out) live in ``replica/inspection.py``.

:func:`list_inspections` is what ``sanji hub inspections`` prints and the dashboard's ``/inspections``
page shows (``hub/dashboard/inspections.py``): one row per task record, newest first (task ids are
UUIDv7), with the application's number and current status, the item, the field device, when the task
was assigned and is due, whether it is still open or overdue, the report's result and when it was
recorded, how many photos it names and which of its files (photos and signature) the hub does not hold
yet. Nothing about the citizen (name, ID number, phone, address) is in a row: this is an operations
list, and the task's own copy of the address and phone stays out of it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from hub import blobindex
from present.webui import TIER_NAMES
from replica import inspection as shared
from replica.errors import Refused
from replica.ids import iso_from_ms
from replica.inspection import day_of
from sync.fold import Record
from sync.hlc import wall_ms
from sync.inspection import TASK_ASSIGNED, TASK_DONE
from sync.workflow import STATUS_LABELS, Status

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
    for task_id, app_id in hub.store.task_ids():
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


def _application(hub: Hub, number: str) -> str:
    app_id = hub.store.application_id(number)
    if app_id is None:
        raise Refused(
            f"区局没有编号为 {number} 的办件：请核对办件编号（sanji hub applications 可列出） (no such application)"
        )
    return app_id


def tasks_of(hub: Hub, app_id: str) -> list[tuple[str, dict[str, object]]]:
    """(task id, task fields) of every task for an application, oldest first (ids are UUIDv7)."""
    return hub.store.tasks_of(hub.records, app_id)


def check_inspector(hub: Hub, inspector: str) -> None:
    """Refuse unless ``inspector`` is an enrolled, unrevoked field device."""
    station = hub.store.station(inspector)
    if station is None:
        raise Refused(
            f"区局没有登记踏勘设备 {inspector}：请先登记（sanji hub enroll … --tier field）或核对编码"
            " (no station is registered)"
        )
    if station.tier != "field":
        raise Refused(
            f"{inspector} 是{TIER_NAMES.get(station.tier, station.tier)}站点，不是踏勘设备："
            "请派给用 --tier field 登记的设备"
            f" ({station.tier} station, not a field device)"
        )
    if station.revoked:
        raise Refused(f"踏勘设备 {inspector} 已被吊销：请重新登记它，或改派其他踏勘设备 (has been revoked)")


def assign(
    hub: Hub,
    number: str,
    inspector: str,
    due: str | None = None,
    also: Callable[[dict[str, object]], object] | None = None,
) -> dict[str, object]:
    """Assign an inspection of application ``number`` to field device ``inspector``. Raises Refused.
    ``also`` gets the summary inside the same transaction (the dashboard's audit row)."""
    app_id = _application(hub, number)
    check_inspector(hub, inspector)
    job = shared.plan(
        hub.store.replica_connection,
        hub.records,
        hub.catalogue()[1],
        app_id=app_id,
        number=number,
        inspector=inspector,
        due=due,
        now_ms=hub.clock(),
    )
    with hub.store.transaction():
        hub.write("task", job.task_id, job.task, {})
        if job.application:
            hub.write("application", app_id, job.application, job.base)
        if also is not None:
            also(job.summary())
    return job.summary()


def resume_fields(hub: Hub, app_id: str, record: Record) -> tuple[dict[str, object], dict[str, int]]:
    """Fields (and their bases) that end an inspection's pause: ``paused`` off, ``due_date`` moved out."""
    return shared.resume_fields(
        hub.store.replica_connection,
        hub.records,
        hub.catalogue()[1].calendar,
        app_id=app_id,
        record=record,
        now_ms=hub.clock(),
    )


def inspections_text(d: dict[str, Any]) -> str:
    """``sanji hub inspections`` without ``--json``."""
    lines = []
    for i in d["inspections"]:
        due = f"期限 {i['due'] or '—'}" + ("（已逾期）" if i["overdue"] else "")
        result = RESULT_LABELS.get(i["result"], i["result"]) if i["result"] else "—"
        missing = len(i["missing_blobs"])
        files = f"缺 {missing} 个文件" if missing else ("—" if i["result"] is None else "文件齐全")
        lines.append(
            f"{i['number']}  {i['item_name'] or i['item']}  {i['inspector_name'] or i['inspector']}"
            f"（{i['inspector']}）  派单 {i['assigned_at'][:16].replace('T', ' ') or '—'}  {due}  "
            f"{TASK_LABELS.get(i['status'], i['status'])}  结论 {result}  照片 {i['photos']} 张  "
            f"{files}  办件{_status_label(i['application_status'])}"
        )
    return "\n".join(lines) or "（无踏勘任务）"


def _status_label(value: str) -> str:
    try:
        return STATUS_LABELS[Status(value)]
    except ValueError:
        return value or "—"
