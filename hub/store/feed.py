"""What the hub store sends down: each station's feed of logged changes, and the catalogue releases.

Tables ``feed`` (which logged change goes to which station's downstream feed) and ``releases``
(signed catalogue releases), plus the owner of an application as the ``applications`` projection
shows it, which decides whose feeds a change joins. A part of :class:`hub.store.HubStore`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from protocol.codec import unpack

# Ids per IN (...) query: well under SQLite's limit on bound parameters.
_IDS_PER_QUERY = 500


def _wire(r: tuple[object, ...]) -> list[object]:
    wire: list[object] = [r[1], r[2], r[3], r[4], r[5], r[6], unpack(bytes(r[7])), unpack(bytes(r[8]))]  # type: ignore[arg-type]
    if r[9]:
        wire.append(r[9])
    return wire


class Feed:
    """The feeds' and releases' part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    # -- feeds ------------------------------------------------------------------------------------

    def add_to_feed(self, station: str, change_rowid: int) -> None:
        # ON CONFLICT DO NOTHING rather than SQLite's INSERT OR IGNORE: the same words in PostgreSQL.
        sql = "INSERT INTO feed (station, change) VALUES (?, ?) ON CONFLICT DO NOTHING"
        self.conn.execute(sql, (station, change_rowid))

    def feed_page(self, station: str, after: int, limit: int) -> list[tuple[int, list[object]]]:
        """Up to ``limit`` (rowid, wire change) for ``station`` after ``after``, oldest first.

        A change with an author goes down with it as the ninth element, as ``sync.change.change_to_wire``
        writes it (so a township sees 经办人 of its villages' changes); one without keeps its eight."""
        rows = self.conn.execute(
            "SELECT c.rowid, c.origin, c.epoch, c.seq, c.hlc, c.entity, c.rid, c.fields, c.base, c.author"
            " FROM feed f JOIN changes c ON c.rowid = f.change WHERE f.station=? AND f.change>?"
            " ORDER BY f.change LIMIT ?",
            (station, after, limit),
        ).fetchall()
        return [(int(r[0]), _wire(r)) for r in rows]

    def delivered(self, station: str, change_rowid: int) -> bool:
        """Whether the logged change at ``change_rowid`` is in ``station``'s feed."""
        row = self.conn.execute("SELECT 1 FROM feed WHERE station=? AND change=?", (station, change_rowid))
        return row.fetchone() is not None

    def application_owner(self, application: str) -> tuple[str, str] | None:
        """(accepting station, item) of an application as the projection shows it, or None."""
        row = self.conn.execute("SELECT station, item FROM applications WHERE id=?", (application,)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def application_owners(self, applications: Iterable[str]) -> dict[str, tuple[str, str]]:
        """:meth:`application_owner` of many applications in a few queries; unknown ones are left out."""
        ids = sorted(set(applications))
        found: dict[str, tuple[str, str]] = {}
        for i in range(0, len(ids), _IDS_PER_QUERY):
            part = ids[i : i + _IDS_PER_QUERY]
            rows = self.conn.execute(
                f"SELECT id, station, item FROM applications WHERE id IN ({','.join('?' * len(part))})", part
            )
            found.update((str(app), (str(station), str(item))) for app, station, item in rows)
        return found

    # -- catalogue releases -------------------------------------------------------------------------

    def add_release(self, version: int, frame: bytes, issued_at: str, expires_at: str, now_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO releases (version, frame, issued_at, expires_at, published_ms) VALUES (?,?,?,?,?)",
            (version, frame, issued_at, expires_at, now_ms),
        )

    def release(self, version: int) -> bytes | None:
        row = self.conn.execute("SELECT frame FROM releases WHERE version=?", (version,)).fetchone()
        return None if row is None else bytes(row[0])

    def release_frames(self) -> list[tuple[int, bytes]]:
        """Every release (version, signed frame), oldest first."""
        rows = self.conn.execute("SELECT version, frame FROM releases ORDER BY version").fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def replace_release_frame(self, version: int, frame: bytes) -> None:
        """The same release signed again (after the hub's online key was rotated). Call in a transaction."""
        self.conn.execute("UPDATE releases SET frame=? WHERE version=?", (frame, version))

    def latest_release(self) -> tuple[int, bytes] | None:
        row = self.conn.execute("SELECT version, frame FROM releases ORDER BY version DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))
