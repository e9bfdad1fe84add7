"""The application listing both sides show: ``sanji node applications`` and ``sanji hub applications``,
the station UI's list and the hub dashboard's search.

Two readers of one query over the ``applications`` projection both replicas keep
(``replica/records.py``), with the paused flag as the workflow means it and the citizen's ID number and
phone masked unless the caller reveals them (and records why):

- ``iter_applications``: every match, oldest accepted first, one row at a time from the cursor, so a
  listing of a million applications streams in flat memory (the CLI writes each row as it comes).
- ``page``: one page of a list, newest first, by keyset: the page after (or before) the
  ``(accepted_at, number)`` of a row already shown, never an OFFSET, so page 5,000 costs what page 1
  does and a row accepted meanwhile never shifts the pages. Filters (station, status, the start of a
  number or a name, and the due-date states) are SQL over indexed columns (migration ``m101``), so only the rows shown
  are read; the total is a COUNT over the same filter.

The due-date states are the ones ``present.webui.due_state`` draws, written as ranges of ``due_date``
on open files: overdue before ``today``, nearly due from ``today`` to ``soon_until`` (the last day within
the warning's working days, which the caller works out with the calendar).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

from replica.errors import Refused
from sync.identity import mask_id, mask_phone
from sync.numbering import parse_application_number
from sync.workflow import FINAL, STATUS_LABELS, Status

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
PAGE_COLUMNS = (*COLUMNS, "theme")
PAGE_SIZE = 100
OPEN = tuple(s.value for s in Status if s not in FINAL)
DUE_FILTERS = ("overdue", "soon", "open")

# Sorts after every character (SQLite compares text as UTF-8 bytes): q + _LAST bounds what starts with q.
_LAST = "\U0010ffff"

Key = tuple[str, str]  # (accepted_at, number) of a row: where a page starts or ends


def parse_status(text: str) -> Status:
    """A status as staff type it (``--to``, ``--status``); the refusal lists every code with its word."""
    try:
        return Status(text)
    except ValueError:
        choices = "、".join(f"{s.value}（{word}）" for s, word in STATUS_LABELS.items())
        raise Refused(f"没有“{text}”这个状态：请改用其中之一：{choices} (unknown status {text!r})") from None


@dataclass(frozen=True)
class Filters:
    """What a list is narrowed to; empty strings mean "any". ``today`` and ``soon_until`` are
    ``YYYY-MM-DD`` and needed only by the due-date filters."""

    station: str = ""
    status: str = ""
    q: str = ""
    items: tuple[str, ...] = ()  # the catalogue items the search words name (an item's name, 低保, zdshbz)
    due: str = ""
    today: str = ""
    soon_until: str = ""


@dataclass
class Page:
    rows: list[dict[str, object]]
    total: int
    newer: Key | None = None  # the page before this one starts above this key
    older: Key | None = None  # the page after this one starts below this key
    extra: dict[str, object] = field(default_factory=dict)


def check_status(status: str | None) -> None:
    if status:
        parse_status(status)


def _where(f: Filters) -> tuple[str, list[object]]:
    where, args = ["accepted_at IS NOT NULL", "number IS NOT NULL"], []  # a record whose creation is yet to come
    if f.station:
        where.append("station=?")
        args.append(f.station)
    if f.status:
        where.append("status=?")
        args.append(f.status)
    if f.due in DUE_FILTERS:
        statuses = [f.status] if f.status else list(OPEN)
        if f.status and f.status not in OPEN:
            where.append("0")  # a closed file is never overdue, nearly due or open
        elif not f.status:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args += statuses
        if f.due == "overdue":
            where.append("due_date < ? AND due_date <> ''")
            args.append(f.today)
        elif f.due == "soon":
            where.append("due_date BETWEEN ? AND ?")
            args += [f.today, f.soon_until]
    if f.q and _whole_number(f.q):
        # A whole application number (typed or scanned from the notice's QR code): the unique index.
        where.append("number=?")
        args.append(f.q)
    elif f.q:
        # The start of a number or of a name: two index ranges (applications_number and
        # applications_name), where LIKE '%q%' read all million rows for every search.
        # Items the words name take a third index (applications_item): each term of the OR has its own.
        by_item = f" OR item IN ({','.join('?' * len(f.items))})" if f.items else ""
        where.append(f"((number >= ? AND number < ?) OR (applicant_name >= ? AND applicant_name < ?){by_item})")
        args += [f.q, f.q + _LAST, f.q, f.q + _LAST, *f.items]
    return " AND ".join(where), args


def station_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Applications held per accepting station, from the count the projection keeps (m103)."""
    rows = conn.execute("SELECT station, SUM(n) FROM application_counts GROUP BY station")
    return {str(code): int(n) for code, n in rows if n}


def held(conn: sqlite3.Connection, station: str = "", status: str = "") -> int:
    """Applications held in all, or of one station, or in one status, from the kept counts."""
    where, args = [], []
    if station:
        where.append("station=?")
        args.append(station)
    if status:
        where.append("status=?")
        args.append(status)
    sql = "SELECT COALESCE(SUM(n), 0) FROM application_counts" + (" WHERE " + " AND ".join(where) if where else "")
    return int(conn.execute(sql, args).fetchone()[0])


def _whole_number(q: str) -> bool:
    try:
        parse_application_number(q)
    except ValueError:
        return False
    return True


def count(conn: sqlite3.Connection, f: Filters) -> int:
    """How many rows the filters select in all: the kept counts when only a station or a status is
    chosen (the default lists), else a COUNT over the same indexed filter."""
    if not (f.q or f.due in DUE_FILTERS):
        return held(conn, f.station, f.status)
    where, args = _where(f)
    return int(conn.execute(f"SELECT COUNT(*) FROM applications WHERE {where}", args).fetchone()[0])


def page_sql(f: Filters, *, older_than: Key | None = None, newer_than: Key | None = None) -> tuple[str, list[object]]:
    """The query of one page (exposed so the query-plan test reads exactly what the pages run)."""
    where, args = _where(f)
    # With a search, the matches come from the number and name indexes and are few; a keyset that
    # SQLite could read as a range of accepted_at would have it walk ten years of rows instead, testing
    # each against the search. The unary + keeps the keyset a plain filter there.
    keyset = "(+accepted_at, +number)" if f.q else "(accepted_at, number)"
    if newer_than is not None:
        where += f" AND {keyset} > (?, ?)"
        args += list(newer_than)
        order = "accepted_at ASC, number ASC"
    else:
        if older_than is not None:
            where += f" AND {keyset} < (?, ?)"
            args += list(older_than)
        order = "accepted_at DESC, number DESC"
    return f"SELECT {', '.join(PAGE_COLUMNS)} FROM applications WHERE {where} ORDER BY {order} LIMIT ?", args


def page(
    conn: sqlite3.Connection,
    f: Filters,
    *,
    older_than: Key | None = None,
    newer_than: Key | None = None,
    size: int = PAGE_SIZE,
    reveal: bool = False,
) -> Page:
    """One page, newest first: the first, the one below ``older_than`` or the one above ``newer_than``."""
    check_status(f.status)
    sql, args = page_sql(f, older_than=older_than, newer_than=newer_than)
    raw = conn.execute(sql, [*args, size + 1]).fetchall()
    more = len(raw) > size
    raw = raw[:size]
    if newer_than is not None:
        raw.reverse()
    rows = [_row(dict(zip(PAGE_COLUMNS, r, strict=True)), reveal) for r in raw]
    first = (str(rows[0]["accepted_at"]), str(rows[0]["number"])) if rows else None
    last = (str(rows[-1]["accepted_at"]), str(rows[-1]["number"])) if rows else None
    if newer_than is not None:
        newer, older = (first if more else None), last
    else:
        newer, older = (first if older_than is not None else None), (last if more else None)
    return Page(rows, count(conn, f), newer=newer, older=older)


def iter_applications(
    conn: sqlite3.Connection, *, station: str | None = None, status: str | None = None, reveal: bool = False
) -> Iterator[dict[str, object]]:
    """Every application held (optionally of one accepting station and in one status), oldest accepted
    first, read from the cursor as the caller consumes them."""
    check_status(status)
    where, args = [], []
    if station:
        where.append("station=?")
        args.append(station)
    if status:
        where.append("status=?")
        args.append(status)
    sql = f"SELECT {', '.join(COLUMNS)} FROM applications" + (" WHERE " + " AND ".join(where) if where else "")
    # The order must come from an index (m101), not a sort of every row held in memory first.
    for r in conn.execute(sql + " ORDER BY accepted_at, number", args):
        yield _row(dict(zip(COLUMNS, r, strict=True)), reveal)


def list_applications(
    conn: sqlite3.Connection, *, station: str | None = None, status: str | None = None, reveal: bool = False
) -> list[dict[str, object]]:
    """The applications held, as a list (small stores and tests; the CLI streams ``iter_applications``)."""
    return list(iter_applications(conn, station=station, status=status, reveal=reveal))


def key_text(key: Key | None) -> str:
    """A key as it travels in a page link."""
    return "" if key is None else f"{key[0]}~{key[1]}"


def key_of(text: str) -> Key | None:
    """A key read back from a link; anything malformed is no key (the first page)."""
    at, sep, number = text.partition("~")
    return (at[:40], number[:64]) if sep and at and number else None


def _row(d: dict[str, object], reveal: bool) -> dict[str, object]:
    # The due-date clock stands still while the application is inspected, and only then: a withdrawal
    # made meanwhile at the window cannot lift the flag (it is the decider's), and a closed file's clock
    # is not "paused".
    d["paused"] = bool(d["paused"]) and d["status"] == "inspecting"
    if not reveal:
        d["applicant_id"] = mask_id(str(d["applicant_id"] or ""))
        d["applicant_phone"] = mask_phone(str(d["applicant_phone"] or ""))
    return d
