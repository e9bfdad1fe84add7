"""The tables the nightly job keeps for its morning report (``hub/nightly_facts.py``): deferred (容缺)
materials per application (``nightly_materials``) and ratings with their station (``nightly_ratings``),
and the records and log positions it refreshes them from. The job decides what a record holds; this
part only reads records and writes rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

Row = tuple[str, str, bytes, str]  # entity, id, packed state, application
Material = tuple[str, str, str]  # application, material, due day
Rating = tuple[str, str, str | None, int | None, object]  # id, application, station, score, comment
_TABLES = {"application": ("nightly_materials", "application"), "rating": ("nightly_ratings", "id")}


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


class ReportFacts:
    """The report facts' part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def record_states(self, entity: str, ids: Sequence[str]) -> list[Row]:
        """The records of ``entity`` with these ids (those that exist)."""
        rows = self.conn.execute(
            f"SELECT entity, id, state, application FROM records WHERE entity=? AND id IN ({_marks(ids)})",
            (entity, *ids),
        ).fetchall()
        return [(str(e), str(i), bytes(s), str(a)) for e, i, s, a in rows]

    def record_states_after(self, entity: str, after: str, limit: int) -> list[Row]:
        """The next ``limit`` records of ``entity`` after id ``after``, in id order."""
        rows = self.conn.execute(
            "SELECT entity, id, state, application FROM records WHERE entity=? AND id > ? ORDER BY id LIMIT ?",
            (entity, after, limit),
        ).fetchall()
        return [(str(e), str(i), bytes(s), str(a)) for e, i, s, a in rows]

    def records_changed(self, after_rowid: int, upto_rowid: int, entities: Sequence[str]) -> list[tuple[str, str]]:
        """(entity, id) of the records of ``entities`` with a change logged in (after, upto]."""
        rows = self.conn.execute(
            "SELECT DISTINCT entity, rid FROM changes WHERE rowid > ? AND rowid <= ?"
            f" AND entity IN ({_marks(entities)})",
            (after_rowid, upto_rowid, *entities),
        ).fetchall()
        return [(str(e), str(r)) for e, r in rows]

    def station_of(self, application: str) -> str | None:
        """The station of an application the hub holds, else None."""
        row = self.conn.execute("SELECT station FROM applications WHERE id=?", (application,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def forget_facts(self, entity: str, ids: Sequence[str]) -> None:
        """Drop the facts of these records (an application's materials, or these ratings)."""
        table, column = _TABLES[entity]
        self.conn.execute(f"DELETE FROM {table} WHERE {column} IN ({_marks(ids)})", tuple(ids))

    def clear_facts(self) -> None:
        self.conn.execute("DELETE FROM nightly_materials")
        self.conn.execute("DELETE FROM nightly_ratings")

    def put_facts(self, applications: Sequence[str], materials: Sequence[Material], ratings: Sequence[Rating]) -> None:
        """The facts read from these applications (their materials replace what they had) and ratings;
        a rating that came before its application learns the station once the application is here.
        Call inside a transaction."""
        for i in range(0, len(applications), 500):
            part = applications[i : i + 500]
            self.conn.execute(f"DELETE FROM nightly_materials WHERE application IN ({_marks(part)})", tuple(part))
        self.conn.executemany(
            "INSERT INTO nightly_materials (application, material, due) VALUES (?,?,?)"
            " ON CONFLICT (application, material) DO UPDATE SET due=excluded.due",
            materials,
        )
        self.conn.executemany(
            "INSERT INTO nightly_ratings (id, application, station, score, comment) VALUES (?,?,?,?,?)"
            " ON CONFLICT (id) DO UPDATE SET application=excluded.application, station=excluded.station,"
            " score=excluded.score, comment=excluded.comment",
            ratings,
        )
        self.conn.executemany(
            "UPDATE nightly_ratings SET station=(SELECT station FROM applications WHERE id=?)"
            " WHERE application=? AND station IS NULL",
            [(a, a) for a in applications],
        )
