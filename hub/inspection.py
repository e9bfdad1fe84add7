"""Assigning on-site inspections (现场踏勘) and pausing the due-date clock while they run.

``sanji hub inspect`` writes one ``task`` record (a fresh UUIDv7) through :meth:`Hub.write`, so the
change is logged and fanned out like any other: to the field device named as inspector (``hub/feed.py``
sends it task and report changes only), and to the station that accepted the application. The task
carries what the inspector needs to find the place and do the job (application id and number, item,
address, the applicant's phone, due date, checklist) and nothing else about the citizen.

Assigning also moves an application that is ``under_review`` to ``inspecting`` in the same
transaction, and sets its ``paused`` flag: the time limit stands still while the inspection runs. A
second inspection of an application already ``inspecting`` (after a 整改 result, say) adds a task and
leaves the status alone. When the application leaves ``inspecting`` (``hub transition --to approved``
etc.), :func:`resume_fields` lifts the pause and moves the due date out by the working days the
inspection took, counted from the move to ``inspecting`` to the day the last report was recorded (or
today, if no report came).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from replica.errors import Refused
from replica.ids import CHINA, uuid7
from sync.fold import Record, values, versions
from sync.hlc import wall_ms
from sync.inspection import (
    DEFAULT_TASK_DAYS,
    TASK_ASSIGNED,
    TASK_DONE,
    checklist_for,
    extended_due_date,
    paused_working_days,
)
from sync.workflow import Status

if TYPE_CHECKING:
    from hub.service import Hub


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=CHINA).date()


def _application(hub: Hub, number: str) -> str:
    row = hub.store.conn.execute("SELECT id FROM applications WHERE number=?", (number,)).fetchone()
    if row is None:
        raise Refused(f"no application numbered {number} at the hub")
    return str(row[0])


def tasks_of(hub: Hub, app_id: str) -> list[tuple[str, dict[str, object]]]:
    """(task id, task fields) of every task for an application, oldest first (ids are UUIDv7)."""
    rows = hub.store.conn.execute(
        "SELECT id FROM records WHERE entity='task' AND application=? ORDER BY id", (app_id,)
    ).fetchall()
    return [(str(r[0]), hub.records.values("task", str(r[0]))) for r in rows]


def _check_inspector(hub: Hub, inspector: str) -> None:
    station = hub.store.station(inspector)
    if station is None:
        raise Refused(f"no station {inspector} is registered; "
                      "enrol the device first (`sanji hub enroll ... --tier field`)")
    if station.tier != "field":
        raise Refused(f"{inspector} is a {station.tier} station, not a field device; "
                      "inspections go to a device enrolled with --tier field")
    if station.revoked:
        raise Refused(f"field device {inspector} has been revoked; re-enrol it or choose another inspector")


def _due(hub: Hub, text: str | None, today: date) -> str:
    cal = hub.catalogue()[1].calendar
    if not text:
        return cal.add_working_days(today, DEFAULT_TASK_DAYS).isoformat()
    try:
        due = date.fromisoformat(text)
    except ValueError:
        raise Refused(f"due date {text!r} is not a YYYY-MM-DD date") from None
    if len(text) != 10:
        raise Refused(f"due date {text!r} is not in YYYY-MM-DD form")
    if due < today:
        raise Refused(f"due date {text} is already past (today is {today.isoformat()})")
    return due.isoformat()


def assign(hub: Hub, number: str, inspector: str, due: str | None = None) -> dict[str, object]:
    """Assign an inspection of application ``number`` to field device ``inspector``. Raises Refused."""
    app_id = _application(hub, number)
    record = hub.records.load("application", app_id)
    vals = values(record)
    _check_inspector(hub, inspector)
    _, cat = hub.catalogue()
    item = cat.items.get(str(vals.get("item", "")))
    if item is None:
        raise Refused(f"{number}: item {vals.get('item')!r} is not in the current catalogue; cannot derive a checklist")
    if not item.inspection_required:
        raise Refused(f"{number}: {item.name} ({item.code}) does not require on-site inspection "
                      "(the catalogue says inspection_required: false)")
    status = Status(str(vals.get("status")))
    if status not in (Status.UNDER_REVIEW, Status.INSPECTING):
        raise Refused(f"{number} is {status.value}; an inspection is assigned during review "
                      "(move it to under_review first)")
    for task_id, task in tasks_of(hub, app_id):
        if task.get("status") != TASK_DONE:
            raise Refused(f"{number}: task {task_id} for {task.get('inspector')} is still open; "
                          "wait for its report before assigning another")
    now = hub.clock()
    due_text = _due(hub, due, _day(now))
    task_id = uuid7(now)
    fields: dict[str, object] = {
        "application": app_id, "number": number, "inspector": inspector, "due": due_text,
        "status": TASK_ASSIGNED, "item": item.code, "address": str(vals.get("address") or ""),
        "phone": str(vals.get("applicant_phone") or ""), "checklist": checklist_for(item),
    }
    with hub.store.transaction():
        hub.write("task", task_id, fields, {})
        if status is Status.UNDER_REVIEW:
            seen = versions(record)
            hub.write("application", app_id, {"status": Status.INSPECTING.value, "paused": True},
                      {"status": seen.get("status", 0), "paused": seen.get("paused", 0)})
    return {"task": task_id, "number": number, "inspector": inspector, "due": due_text,
            "status": Status.INSPECTING.value, "checklist": fields["checklist"]}


def _report_day(hub: Hub, app_id: str) -> date | None:
    """The day the latest report on this application was recorded on site, if any came."""
    days: list[date] = []
    for task_id, _ in tasks_of(hub, app_id):
        recorded = hub.records.values("report", task_id).get("recorded_at")
        if isinstance(recorded, str) and len(recorded) >= 10:
            try:
                days.append(date.fromisoformat(recorded[:10]))
            except ValueError:
                continue
    return max(days) if days else None


def resume_fields(hub: Hub, app_id: str, record: Record) -> tuple[dict[str, object], dict[str, int]]:
    """Fields (and their bases) that end an inspection's pause: ``paused`` off, ``due_date`` moved out."""
    vals = values(record)
    seen = versions(record)
    fields: dict[str, object] = {"paused": False}
    base = {"paused": seen.get("paused", 0)}
    due_text, status_cell = vals.get("due_date"), record.get("status")
    if not isinstance(due_text, str) or not due_text or status_cell is None or vals.get("status") != "inspecting":
        return fields, base
    try:
        due = date.fromisoformat(due_text)
    except ValueError:
        return fields, base
    today = _day(hub.clock())
    paused_on = _day(wall_ms(status_cell[0]))  # the status cell's stamp is the move to inspecting
    reported = _report_day(hub, app_id)
    resumed_on = min(today, reported) if reported is not None else today
    cal = hub.catalogue()[1].calendar
    new_due = extended_due_date(cal, due, paused_working_days(cal, paused_on, resumed_on))
    if new_due != due:
        fields["due_date"] = new_due.isoformat()
        base["due_date"] = seen.get("due_date", 0)
    return fields, base
