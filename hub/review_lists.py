"""The conflicts and quarantine lists as the dashboard pages them: grouped by station (how many each
station has, and one station's rows at a time when the operator picks it), newest first, a page at a
time by keyset (never OFFSET), so ten years of them cost what one page does.

A conflict belongs to the station that accepted its application (the record's ``application``, read
through ``records``); a held change to the station that sent it. The row shapes are the ones
``hub/operations.conflicts`` and ``hub/quarantine_review.quarantine_rows`` give the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.operations import conflict_row
from hub.quarantine_review import quarantine_row

if TYPE_CHECKING:
    from hub.service import Hub

PAGE_SIZE = 50
Key = tuple[str, str]  # (sort value, id) as text, as page links carry it


@dataclass
class Listed:
    rows: list[dict[str, Any]]
    total: int
    groups: list[tuple[str, int]]  # (station code, how many), most first
    newer: Key | None = None
    older: Key | None = None


# A conflict's station: the one that accepted the application its record belongs to.
_CONFLICT_FROM = (
    " FROM conflicts c LEFT JOIN records r ON r.entity=c.entity AND r.id=c.record"
    " LEFT JOIN applications a ON a.id=r.application"
)


def _checked(key: Key | None) -> Key | None:
    """A key from a link whose sort value is a number SQLite can hold; anything else is no key (the
    first page), never an error."""
    return key if key is not None and key[0].isdigit() and len(key[0]) <= 18 else None


def conflict_sql(*, show_all: bool, station: str, older: Key | None, newer: Key | None) -> tuple[str, list[object]]:
    """The page's query (exposed for the query-plan test)."""
    older, newer = _checked(older), _checked(newer)
    where, args = ([] if show_all else ["c.resolved=0"]), []  # type: ignore[var-annotated]
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


def conflicts(
    hub: Hub, *, show_all: bool = False, station: str = "", older: Key | None = None, newer: Key | None = None
) -> Listed:
    conn = hub.store.conn
    older, newer = _checked(older), _checked(newer)
    sql, args = conflict_sql(show_all=show_all, station=station, older=older, newer=newer)
    raw = conn.execute(sql, [*args, PAGE_SIZE + 1]).fetchall()
    more = len(raw) > PAGE_SIZE
    raw = raw[:PAGE_SIZE]
    if newer is not None:
        raw.reverse()
    rows = [{**conflict_row(*r[:10]), "station": r[10], "detected_hlc": r[11]} for r in raw]
    keys = [(str(r["detected_hlc"]), str(r["id"])) for r in rows]
    scope = "" if show_all else " WHERE c.resolved=0"
    groups = [
        (str(code), int(n))
        for code, n in conn.execute(
            f"SELECT COALESCE(a.station, ''), COUNT(*){_CONFLICT_FROM}{scope} GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    ]
    total = sum(n for code, n in groups if not station or code == station)
    return Listed(rows, total, groups, *_ends(keys, more, older, newer))


def quarantine_sql(*, show_all: bool, station: str, older: Key | None, newer: Key | None) -> tuple[str, list[object]]:
    """The page's query (exposed for the query-plan test)."""
    older, newer = _checked(older), _checked(newer)
    where, args = ([] if show_all else ["state='open'"]), []  # type: ignore[var-annotated]
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


def quarantine(
    hub: Hub, *, show_all: bool = False, station: str = "", older: Key | None = None, newer: Key | None = None
) -> Listed:
    conn = hub.store.conn
    older, newer = _checked(older), _checked(newer)
    sql, args = quarantine_sql(show_all=show_all, station=station, older=older, newer=newer)
    raw = conn.execute(sql, [*args, PAGE_SIZE + 1]).fetchall()
    more = len(raw) > PAGE_SIZE
    raw = raw[:PAGE_SIZE]
    if newer is not None:
        raw.reverse()
    rows = [quarantine_row(*r) for r in raw]
    keys = [(str(r["id"]), str(r["id"])) for r in rows]  # the id orders them; a key needs two parts
    scope = "" if show_all else " WHERE state='open'"
    groups = [
        (str(code), int(n))
        for code, n in conn.execute(
            "SELECT CASE WHEN sender='' THEN origin ELSE sender END, COUNT(*) FROM quarantine"
            f"{scope} GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    ]
    total = sum(n for code, n in groups if not station or code == station)
    return Listed(rows, total, groups, *_ends(keys, more, older, newer))


def _ends(keys: list[Key], more: bool, older: Key | None, newer: Key | None) -> tuple[Key | None, Key | None]:
    """(newer, older): the keys the previous and next page links start from, None where there is none."""
    if not keys:
        return None, None
    if newer is not None:
        return (keys[0] if more else None), keys[-1]
    return (keys[0] if older is not None else None), (keys[-1] if more else None)
