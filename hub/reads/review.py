"""The conflicts and quarantine pages' queries: one keyset page of rows, and how many there are per
station (``hub/review_lists.py`` shapes them for the pages).

A conflict belongs to the station that accepted its application (the record's ``application``, read
through ``records``); a held change to the station that sent it. Plain, parameterised SQL; row-value
comparisons ``(a, b) < (?, ?)`` are standard SQL and PostgreSQL runs them as they are.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from hub.store import QuarantineRow

Key = tuple[str, str]  # (sort value, id) as text, as page links carry it

_CONFLICT_FROM = (
    " FROM conflicts c LEFT JOIN records r ON r.entity=c.entity AND r.id=c.record"
    " LEFT JOIN applications a ON a.id=r.application"
)


class ConflictRow(NamedTuple):
    id: str
    entity: str
    record: str
    field: str
    winner: bytes
    loser: bytes
    rule: str
    resolved: int
    resolution: str | None
    number: str | None
    station: str  # '' when the record belongs to no application
    detected_hlc: int


# A held change as the quarantine page lists it: the store's own row type, one shape for both sides.
HeldRow = QuarantineRow


def checked(key: Key | None) -> Key | None:
    """A key from a link whose sort value is a number SQLite can hold; anything else is no key (the
    first page), never an error."""
    return key if key is not None and key[0].isdigit() and len(key[0]) <= 18 else None


def conflict_sql(*, show_all: bool, station: str, older: Key | None, newer: Key | None) -> tuple[str, list[object]]:
    """The conflicts page's query and its arguments, without the LIMIT's."""
    older, newer = checked(older), checked(newer)
    where: list[str] = [] if show_all else ["c.resolved=0"]
    args: list[object] = []
    if station:
        where.append("COALESCE(a.station, '')=?")
        args.append(station)
    order = "DESC"
    if older is not None:
        where.append("(c.detected_hlc, c.id) < (?, ?)")
        args += [int(older[0]), older[1]]
    elif newer is not None:
        where.append("(c.detected_hlc, c.id) > (?, ?)")
        args += [int(newer[0]), newer[1]]
        order = "ASC"
    sql = (
        "SELECT c.id, c.entity, c.record, c.field, c.winner, c.loser, c.rule, c.resolved, c.resolution,"
        " a.number, COALESCE(a.station, ''), c.detected_hlc"
        + _CONFLICT_FROM
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY c.detected_hlc {order}, c.id {order} LIMIT ?"
    )
    return sql, args


def quarantine_sql(*, show_all: bool, station: str, older: Key | None, newer: Key | None) -> tuple[str, list[object]]:
    """The quarantine page's query and its arguments, without the LIMIT's."""
    older, newer = checked(older), checked(newer)
    where: list[str] = [] if show_all else ["state='open'"]
    args: list[object] = []
    if station:
        where.append("(sender=? OR (sender='' AND origin=?))")
        args += [station, station]
    order = "DESC"
    if older is not None:
        where.append("id < ?")
        args.append(int(older[0]))
    elif newer is not None:
        where.append("id > ?")
        args.append(int(newer[0]))
        order = "ASC"
    sql = (
        "SELECT id, origin, epoch, seq, reason, created_ms, whole_batch, state, note, raw, code, sender"
        " FROM quarantine" + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY id {order} LIMIT ?"
    )
    return sql, args


class ReviewReads:
    conn: sqlite3.Connection

    def conflict_page(
        self, *, show_all: bool, station: str, older: Key | None, newer: Key | None, limit: int
    ) -> list[ConflictRow]:
        """Up to ``limit`` conflicts (open ones unless ``show_all``), newest first; after ``newer``
        oldest first (the caller turns them round)."""
        sql, args = conflict_sql(show_all=show_all, station=station, older=older, newer=newer)
        return [ConflictRow(*r) for r in self.conn.execute(sql, [*args, limit])]

    def conflicts_per_station(self, *, show_all: bool) -> list[tuple[str, int]]:
        """(station, how many conflicts), most first, then by code."""
        scope = "" if show_all else " WHERE c.resolved=0"
        rows = self.conn.execute(
            f"SELECT COALESCE(a.station, ''), COUNT(*){_CONFLICT_FROM}{scope} GROUP BY 1 ORDER BY 2 DESC, 1"
        )
        return [(str(code), int(n)) for code, n in rows]

    def held_page(
        self, *, show_all: bool, station: str, older: Key | None, newer: Key | None, limit: int
    ) -> list[HeldRow]:
        """Up to ``limit`` held changes (open ones unless ``show_all``), newest first; after ``newer``
        oldest first (the caller turns them round)."""
        sql, args = quarantine_sql(show_all=show_all, station=station, older=older, newer=newer)
        return [HeldRow(*r) for r in self.conn.execute(sql, [*args, limit])]

    def held_per_station(self, *, show_all: bool) -> list[tuple[str, int]]:
        """(sending station, how many held changes), most first, then by code."""
        scope = "" if show_all else " WHERE state='open'"
        rows = self.conn.execute(
            "SELECT CASE WHEN sender='' THEN origin ELSE sender END, COUNT(*) FROM quarantine"
            f"{scope} GROUP BY 1 ORDER BY 2 DESC, 1"
        )
        return [(str(code), int(n)) for code, n in rows]
