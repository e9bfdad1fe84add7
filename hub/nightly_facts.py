"""What the morning report needs from inside records, kept in two small tables by the nightly job.

Deferred (容缺) materials live in an application's ``m.<name>`` cells and scores in rating records;
reading them for the report meant unpacking every open application's record and every rating, every
night (10 s at 100,000 applications). The nightly job instead keeps
- ``nightly_materials``: one row per material an application holds as deferred, with its due day;
- ``nightly_ratings``: one row per rating, with its application's station, score and comment,
refreshed from the records whose changes were logged since the last refresh (the log's rowid above
the mark ``nightly_facts_rowid`` in ``hub_meta``). The first refresh on a hub reads every record once.

The records are read outside any transaction and each chunk is written in a short one, so the
serving hub's writers are never held up for long. A record changed after the refresh read it has a
change logged above the new mark, so the next refresh reads it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from protocol.codec import unpack
from replica.db import transaction

if TYPE_CHECKING:
    from hub.service import Hub

MARK = "nightly_facts_rowid"
CHUNK = 500
ENTITIES = ("application", "rating")
TABLES = {"application": ("nightly_materials", "application"), "rating": ("nightly_ratings", "id")}


def _cell(state: dict[str, object], name: str) -> object:
    cell = state.get(name)
    return cell[2] if isinstance(cell, list) and len(cell) > 2 else None


def _write(conn: sqlite3.Connection, rows: Sequence[tuple[str, str, bytes, str]]) -> None:
    apps = [rid for entity, rid, _, _ in rows if entity == "application"]
    materials: list[tuple[str, str, str]] = []
    ratings: list[tuple[str, str, str, object, object]] = []
    for entity, rid, state, application in rows:
        raw = unpack(state)
        assert isinstance(raw, dict)
        if entity == "application":
            for name in raw:
                value = _cell(raw, name)
                deferred = isinstance(value, list) and len(value) > 1 and value[0] == "deferred" and value[1]
                if name.startswith("m.") and deferred:
                    materials.append((rid, name[2:], str(value[1])))  # type: ignore[index]
        else:
            score = _cell(raw, "score")
            station = conn.execute("SELECT station FROM applications WHERE id=?", (application,)).fetchone()
            ratings.append(
                (
                    rid,
                    application,
                    station[0] if station else None,
                    score if isinstance(score, int) else None,
                    _cell(raw, "comment"),
                )
            )
    for i in range(0, len(apps), CHUNK):
        part = apps[i : i + CHUNK]
        conn.execute(f"DELETE FROM nightly_materials WHERE application IN ({','.join('?' * len(part))})", part)
    conn.executemany("INSERT OR REPLACE INTO nightly_materials (application, material, due) VALUES (?,?,?)", materials)
    conn.executemany(
        "INSERT OR REPLACE INTO nightly_ratings (id, application, station, score, comment) VALUES (?,?,?,?,?)", ratings
    )
    # A rating that came before its application learns the station once the application is here.
    conn.executemany(
        "UPDATE nightly_ratings SET station=(SELECT station FROM applications WHERE id=?)"
        " WHERE application=? AND station IS NULL",
        [(a, a) for a in apps],
    )


def _states(conn: sqlite3.Connection, entity: str, ids: Sequence[str]) -> list[tuple[str, str, bytes, str]]:
    rows = conn.execute(
        f"SELECT entity, id, state, application FROM records WHERE entity=? AND id IN ({','.join('?' * len(ids))})",
        (entity, *ids),
    ).fetchall()
    return [(str(e), str(i), bytes(s), str(a)) for e, i, s, a in rows]


def _refresh_keys(hub: Hub, keys: Iterable[tuple[str, str]]) -> int:
    conn = hub.store.conn
    by_entity: dict[str, list[str]] = {}
    for entity, rid in keys:
        if entity in ENTITIES:
            by_entity.setdefault(entity, []).append(rid)
    done = 0
    for entity, ids in by_entity.items():
        for i in range(0, len(ids), CHUNK):
            part = ids[i : i + CHUNK]
            rows = _states(conn, entity, part)
            found = {r[1] for r in rows}
            # A record that is gone keeps no deferred material and counts as no rating.
            gone = [rid for rid in part if rid not in found]
            with transaction(hub.store.db):
                table, column = TABLES[entity]
                conn.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(gone))})", gone)
                _write(conn, rows)
            done += len(part)
    return done


def _rebuild(hub: Hub) -> int:
    """Every application and rating, a chunk at a time in key order (the first refresh on a hub)."""
    conn = hub.store.conn
    with transaction(hub.store.db):
        conn.execute("DELETE FROM nightly_materials")
        conn.execute("DELETE FROM nightly_ratings")
    done = 0
    for entity in ENTITIES:
        after = ""
        while True:
            rows = conn.execute(
                "SELECT entity, id, state, application FROM records WHERE entity=? AND id > ? ORDER BY id LIMIT ?",
                (entity, after, CHUNK),
            ).fetchall()
            if not rows:
                break
            with transaction(hub.store.db):
                _write(conn, [(str(e), str(i), bytes(s), str(a)) for e, i, s, a in rows])
            after = str(rows[-1][1])
            done += len(rows)
    return done


def refresh(hub: Hub, also: Iterable[tuple[str, str]] = ()) -> dict[str, int]:
    """Bring both tables up to the log as it stands now; ``also`` names records rewritten otherwise
    (the re-fold's repairs). Returns how many records were read and whether it was a first build."""
    conn = hub.store.conn
    mark = hub.store.get_meta(MARK)
    upto = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM changes").fetchone()[0])
    if not isinstance(mark, int):
        read, rebuilt = _rebuild(hub), 1
    else:
        touched = conn.execute(
            "SELECT DISTINCT entity, rid FROM changes WHERE rowid > ? AND rowid <= ? AND entity IN (?, ?)",
            (mark, upto, *ENTITIES),
        ).fetchall()
        read, rebuilt = _refresh_keys(hub, sorted({*((str(e), str(r)) for e, r in touched), *also})), 0
    with transaction(hub.store.db):
        hub.store.set_meta(MARK, upto)
    return {"records_read": read, "rebuilt": rebuilt}


__all__ = ["MARK", "refresh"]
