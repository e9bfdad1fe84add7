"""Numbers held by more than one application, for the morning report, from what changed.

Two applications share a number only after a station's raw copy-back (a station restored from an old
file numbers again from where that file stopped). Finding them was a GROUP BY over every application
each night. Instead the hub keeps the numbers found so far (``nightly_duplicate_numbers``, filled once
by the migration that made it) and each night re-checks only the numbers of the applications with a
change logged since the last check (the log's rowid above the mark ``nightly_numbers_rowid``), the
records the re-fold rewrote, and the numbers already listed (one of the pair may since have gone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from replica.db import transaction

if TYPE_CHECKING:
    from hub.service import Hub

MARK = "nightly_numbers_rowid"
CHUNK = 500  # ids or numbers per IN (...): well under SQLite's limit on parameters


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _numbers_of(hub: Hub, ids: Sequence[str]) -> set[str]:
    conn, found = hub.store.conn, set()
    for part in _chunks(ids):
        marks = ",".join("?" * len(part))
        found |= {
            str(n)
            for (n,) in conn.execute(
                f"SELECT number FROM applications WHERE id IN ({marks}) AND number IS NOT NULL", part
            )
        }
    return found


def refresh(hub: Hub, also: Iterable[tuple[str, str]] = ()) -> list[dict[str, object]]:
    """Re-check what changed, keep the result, and return every number held twice with its holders."""
    conn = hub.store.conn
    mark = hub.store.get_meta(MARK)
    upto = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM changes").fetchone()[0])
    since = mark if isinstance(mark, int) else 0
    touched = {
        str(rid)
        for (rid,) in conn.execute(
            "SELECT DISTINCT rid FROM changes WHERE rowid > ? AND rowid <= ? AND entity = 'application'",
            (since, upto),
        )
    }
    touched |= {rid for entity, rid in also if entity == "application"}
    listed = {str(n) for (n,) in conn.execute("SELECT number FROM nightly_duplicate_numbers")}
    numbers = sorted(_numbers_of(hub, sorted(touched)) | listed)
    held: dict[str, list[str]] = {}
    for part in _chunks(numbers):
        marks = ",".join("?" * len(part))
        for number, app_id in conn.execute(
            f"SELECT number, id FROM applications WHERE number IN ({marks}) ORDER BY number, id", part
        ):
            held.setdefault(str(number), []).append(str(app_id))
    twice = {n: ids for n, ids in held.items() if len(ids) > 1}
    with transaction(hub.store.db):
        for part in _chunks(numbers):
            conn.execute(f"DELETE FROM nightly_duplicate_numbers WHERE number IN ({','.join('?' * len(part))})", part)
        conn.executemany("INSERT INTO nightly_duplicate_numbers (number) VALUES (?)", [(n,) for n in sorted(twice)])
        hub.store.set_meta(MARK, upto)
    return [{"number": n, "count": len(ids), "ids": ids} for n, ids in sorted(twice.items())]


__all__ = ["MARK", "refresh"]
