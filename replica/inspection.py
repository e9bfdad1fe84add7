"""Assigning an on-site inspection (现场踏勘) and lifting its pause: the part the hub and a township share.

The hub assigns inspections of every application; a township or street centre assigns them for the
items it decides (the model's ``decider`` role may write tasks). Both go through :func:`plan`, so the
same application is refused for the same reason wherever the assignment is typed, and both lift the
pause through :func:`resume_fields` when the application moves on. Who the inspector may be is the
caller's business (the hub reads its station register; a township reads the list of field devices
its feed brought).

Assigning moves an application that is ``under_review`` to ``inspecting`` and sets ``paused`` in the
same transaction as the task: the time limit stands still while the inspection runs. A second
inspection of an application already ``inspecting`` (after a 整改 result, say) adds a task and leaves
the status alone. Leaving ``inspecting`` lifts the pause and moves the due date out by the working
days the inspection took, counted from the move to ``inspecting`` to the day the last report was
recorded on site (or today, if no report came).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime

from replica.errors import Refused
from replica.ids import CHINA, uuid7
from replica.records import RecordStore
from sync.calendar import WorkCalendar
from sync.catalogue import Catalogue
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
from sync.workflow import STATUS_LABELS, Status


def day_of(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=CHINA).date()


def tasks_of(conn: sqlite3.Connection, records: RecordStore, app_id: str) -> list[tuple[str, dict[str, object]]]:
    """(task id, task fields) of every task for an application, oldest first (ids are UUIDv7)."""
    sql = "SELECT id FROM records WHERE entity='task' AND application=? ORDER BY id"
    rows = conn.execute(sql, (app_id,)).fetchall()
    return [(str(r[0]), records.values("task", str(r[0]))) for r in rows]


def _due(cal: WorkCalendar, text: str | None, today: date) -> str:
    if not text:
        return cal.add_working_days(today, DEFAULT_TASK_DAYS).isoformat()
    try:
        due = date.fromisoformat(text)
    except ValueError:
        raise Refused(f"踏勘期限 {text!r} 不是日期：请写成 YYYY-MM-DD，如 2026-03-09 (not a date)") from None
    if len(text) != 10:
        raise Refused(f"踏勘期限 {text!r} 格式不对：请写成 YYYY-MM-DD，如 2026-03-09 (not in YYYY-MM-DD form)")
    if due < today:
        raise Refused(f"踏勘期限 {text} 已经过了（今天是 {today.isoformat()}）：请给今天或以后的日期 (already past)")
    return due.isoformat()


@dataclass(frozen=True)
class Assignment:
    task_id: str
    task: dict[str, object]  # the task record's fields
    application: dict[str, object]  # fields to write on the application ({} when already inspecting)
    base: dict[str, int]  # the versions those application fields were seen at

    def summary(self) -> dict[str, object]:
        return {
            "task": self.task_id,
            "number": self.task["number"],
            "inspector": self.task["inspector"],
            "due": self.task["due"],
            "status": Status.INSPECTING.value,
            "checklist": self.task["checklist"],
        }


def plan(
    conn: sqlite3.Connection,
    records: RecordStore,
    cat: Catalogue,
    *,
    app_id: str,
    number: str,
    inspector: str,
    due: str | None,
    now_ms: int,
) -> Assignment:
    """What assigning an inspection of ``number`` to ``inspector`` writes. Raises Refused, writing nothing."""
    record = records.load("application", app_id)
    vals = values(record)
    item = cat.items.get(str(vals.get("item", "")))
    if item is None:
        raise Refused(
            f"{number}：事项 {vals.get('item')!r} 不在当前事项目录中，无法生成踏勘清单；请先同步最新的事项目录"
            " (item not in the current catalogue)"
        )
    if not item.inspection_required:
        raise Refused(
            f"{number}：{item.name}（{item.code}）不需要现场踏勘，无须安排；请直接审查办理"
            " (the catalogue says inspection_required: false)"
        )
    status = Status(str(vals.get("status")))
    if status not in (Status.UNDER_REVIEW, Status.INSPECTING):
        raise Refused(
            f"{number} 当前为「{STATUS_LABELS[status]}」：踏勘在审查中安排，请先转入审查（--to under_review）"
            f" ({number} is {status.value})"
        )
    for task_id, task in tasks_of(conn, records, app_id):
        if task.get("status") != TASK_DONE:
            raise Refused(
                f"{number}：派给 {task.get('inspector')} 的踏勘任务 {task_id} 还没有报告；"
                "请等报告同步到后再安排新的踏勘 (a task is still open)"
            )
    task: dict[str, object] = {
        "application": app_id,
        "number": number,
        "inspector": inspector,
        "due": _due(cat.calendar, due, day_of(now_ms)),
        "status": TASK_ASSIGNED,
        "item": item.code,
        "address": str(vals.get("address") or ""),
        "phone": str(vals.get("applicant_phone") or ""),
        "checklist": checklist_for(item),
    }
    fields: dict[str, object] = {}
    base: dict[str, int] = {}
    if status is Status.UNDER_REVIEW:
        seen = versions(record)
        fields = {"status": Status.INSPECTING.value, "paused": True}
        base = {"status": seen.get("status", 0), "paused": seen.get("paused", 0)}
    return Assignment(uuid7(now_ms), task, fields, base)


def _report_day(conn: sqlite3.Connection, records: RecordStore, app_id: str) -> date | None:
    """The day the latest report on this application was recorded on site, if any came."""
    days: list[date] = []
    for task_id, _ in tasks_of(conn, records, app_id):
        recorded = records.values("report", task_id).get("recorded_at")
        if isinstance(recorded, str) and len(recorded) >= 10:
            try:
                days.append(date.fromisoformat(recorded[:10]))
            except ValueError:
                continue
    return max(days) if days else None


def resume_fields(
    conn: sqlite3.Connection, records: RecordStore, cal: WorkCalendar, *, app_id: str, record: Record, now_ms: int
) -> tuple[dict[str, object], dict[str, int]]:
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
    today = day_of(now_ms)
    paused_on = day_of(wall_ms(status_cell[0]))  # the status cell's stamp is the move to inspecting
    reported = _report_day(conn, records, app_id)
    resumed_on = min(today, reported) if reported is not None else today
    new_due = extended_due_date(cal, due, paused_working_days(cal, paused_on, resumed_on))
    if new_due != due:
        fields["due_date"] = new_due.isoformat()
        base["due_date"] = seen.get("due_date", 0)
    return fields, base
