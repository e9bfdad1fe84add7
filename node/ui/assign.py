"""A township or street centre assigns an on-site inspection (现场踏勘) from an application's page,
and every station shows the inspection tasks and reports it holds for that application.

``POST /applications/{number}/inspect`` (its handler is on the application's page, ``apps``) runs
``node.assignment.assign``, the code ``sanji node inspect`` runs, so the form refuses exactly what the
command refuses and writes nothing when it does. The form is offered only where it can succeed: this
station decides the item, the catalogue entry requires an inspection, and the application is under
review (or inspecting with every earlier task reported). The inspector is chosen from the field devices
the centre's last feed page named (``meta field_devices``); a centre that has not synced yet is told to
sync first.

A township holds the tasks and reports of the items it decides, a village those of its own
applications; neither holds the photos (they go from the field device to the hub), so the page says
how many there are and where they are kept.
"""

from __future__ import annotations

from typing import Any

from node import commands
from node.station import Station
from node.ui.page import today
from node.ui.photos import RESULT_LABELS
from replica.errors import Refused
from replica.inspection import tasks_of
from sync.inspection import DEFAULT_TASK_DAYS, TASK_DONE
from sync.workflow import Status

TASK_LABELS = {"assigned": "待踏勘", TASK_DONE: "已提交报告"}
DONE_NOTICE = "已安排踏勘，任务将在下次同步时送达踏勘设备；办理时限暂停。"


def inspections(st: Station, app_id: str) -> list[dict[str, Any]]:
    """The inspection tasks this station holds for an application, oldest first, each with its report."""
    out = []
    for task_id, task in tasks_of(st.conn, st.records, app_id):
        rep = st.records.values("report", task_id)
        report = None
        if rep.get("result"):
            photos = rep.get("photos")
            report = {
                "result": rep.get("result"),
                "result_label": RESULT_LABELS.get(str(rep["result"]), rep["result"]),
                "findings": rep.get("findings") or "",
                "gps_flag": rep.get("gps_flag") or "",
                "check_flag": rep.get("check_flag") or "",
                "recorded_at": rep.get("recorded_at") or "",
                "photos": len(photos) if isinstance(photos, list) else 0,
            }
        status = str(task.get("status") or "")
        out.append(
            {
                "task": task_id,
                "inspector": task.get("inspector"),
                "due": task.get("due"),
                "status": status,
                "status_label": TASK_LABELS.get(status, status),
                "report": report,
            }
        )
    return out


def offer(
    st: Station,
    vals: dict[str, Any],
    tasks: list[dict[str, Any]],
    *,
    form: dict[str, str] | None = None,
    error: str = "",
) -> dict[str, Any] | None:
    """What the assignment form needs, or None when this station cannot assign one here and now."""
    if "decider" not in commands.roles_here(st, str(vals.get("station")), str(vals.get("item"))):
        return None
    try:
        cat = st.catalogue().catalogue
    except Refused:
        return None
    item = cat.items.get(str(vals.get("item")))
    status = str(vals.get("status"))
    if item is None or not item.inspection_required:
        return None
    if status != Status.UNDER_REVIEW.value and not (
        status == Status.INSPECTING.value and all(t["status"] == TASK_DONE for t in tasks)
    ):
        return None
    known = st.meta.get("field_devices")
    devices = [str(d) for d in known] if isinstance(known, list) else []
    chosen = (form or {}).get("inspector", "")
    day = today(st)
    return {
        "devices": devices,
        "stale": chosen if chosen and chosen not in devices else "",
        "form": {"inspector": chosen, "due": (form or {}).get("due", "")},
        "error": error,
        "today": day.isoformat(),
        "default_due": cat.calendar.add_working_days(day, DEFAULT_TASK_DAYS).isoformat(),
        "days": DEFAULT_TASK_DAYS,
        "again": bool(tasks),
    }
