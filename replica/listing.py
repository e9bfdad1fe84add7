"""The application listing both sides show: ``sanji node applications`` and ``sanji hub applications``,
the station UI's list and home page.

One query over the ``applications`` projection both replicas keep (``replica/records.py``), oldest
accepted first, with the paused flag as the workflow means it and the citizen's ID number and phone
masked unless the caller reveals them (and records why).
"""

from __future__ import annotations

import sqlite3

from replica.errors import Refused
from sync.identity import mask_id, mask_phone
from sync.workflow import STATUS_LABELS, Status

COLUMNS = (
    "id",
    "number",
    "station",
    "item",
    "status",
    "applicant_name",
    "accepted_at",
    "due_date",
    "applicant_id",
    "applicant_phone",
    "paused",
)


def parse_status(text: str) -> Status:
    """A status as staff type it (``--to``, ``--status``); the refusal lists every code with its word."""
    try:
        return Status(text)
    except ValueError:
        choices = "、".join(f"{s.value}（{word}）" for s, word in STATUS_LABELS.items())
        raise Refused(f"没有“{text}”这个状态：请改用其中之一：{choices} (unknown status {text!r})") from None


def list_applications(
    conn: sqlite3.Connection, *, station: str | None = None, status: str | None = None, reveal: bool = False
) -> list[dict[str, object]]:
    """The applications held, optionally of one accepting station and in one status."""
    if status is not None:
        parse_status(status)
    where, args = [], []
    if station:
        where.append("station=?")
        args.append(station)
    if status:
        where.append("status=?")
        args.append(status)
    sql = f"SELECT {', '.join(COLUMNS)} FROM applications" + (" WHERE " + " AND ".join(where) if where else "")
    return [_row(r, reveal) for r in conn.execute(sql + " ORDER BY accepted_at, number", args)]


def _row(row: tuple[object, ...], reveal: bool) -> dict[str, object]:
    d = dict(zip(COLUMNS, row, strict=True))
    # The due-date clock stands still while the application is inspected, and only then: a withdrawal
    # made meanwhile at the window cannot lift the flag (it is the decider's), and a closed file's clock
    # is not "paused".
    d["paused"] = bool(d["paused"]) and d["status"] == "inspecting"
    if not reveal:
        d["applicant_id"] = mask_id(str(d["applicant_id"] or ""))
        d["applicant_phone"] = mask_phone(str(d["applicant_phone"] or ""))
    return d
