"""Each origin's chain of batches in the hub store, and what the hub has logged of it.

Tables ``cursors`` (per origin and epoch: the next seq expected and the last batch's hash),
``batches`` (every batch taken, with the receipt sent back) and ``horizons`` (how far its feed a
station had applied when it wrote its changes), plus lookups in the change log ``changes``
(``replica/records.py``) by a change's place in its chain. A part of :class:`hub.store.HubStore`.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from sync.session import Cursor


class LoggedChange(NamedTuple):
    """A logged change as stored: its fields and base still packed (canonical msgpack)."""

    hlc: int
    entity: str
    rid: str
    fields: bytes
    base: bytes


class Receipt(NamedTuple):
    batch_hash: bytes
    result: str
    receipt: bytes


class Chains:
    """The chains' part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    # -- cursors and batches ------------------------------------------------------------------------

    def cursor(self, origin: str, epoch: int) -> Cursor:
        row = self.conn.execute(
            "SELECT next_seq, last_hash FROM cursors WHERE origin=? AND epoch=?", (origin, epoch)
        ).fetchone()
        return Cursor() if row is None else Cursor(int(row[0]), bytes(row[1]))

    def set_cursor(self, origin: str, epoch: int, cursor: Cursor) -> None:
        self.conn.execute(
            "INSERT INTO cursors (origin, epoch, next_seq, last_hash) VALUES (?,?,?,?)"
            " ON CONFLICT(origin, epoch) DO UPDATE SET next_seq=excluded.next_seq, last_hash=excluded.last_hash",
            (origin, epoch, cursor.next_seq, cursor.last_hash),
        )

    def applied_ranges(self, origin: str, epoch: int, first_seq: int, last_seq: int) -> dict[tuple[int, int], bytes]:
        """Batches taken from this origin and epoch whose range overlaps [first_seq, last_seq]."""
        rows = self.conn.execute(
            "SELECT first_seq, last_seq, hash FROM batches WHERE origin=? AND epoch=? AND first_seq<=? AND last_seq>=?",
            (origin, epoch, last_seq, first_seq),
        ).fetchall()
        return {(int(a), int(b)): bytes(h) for a, b, h in rows}

    def batch_receipt(self, batch_hash: bytes) -> tuple[str, bytes] | None:
        row = self.conn.execute("SELECT result, receipt FROM batches WHERE hash=?", (batch_hash,)).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def recent_receipts(self, origin: str, limit: int) -> list[Receipt]:
        """The receipts of the ``limit`` batches taken from ``origin`` most recently, newest first."""
        rows = self.conn.execute(
            "SELECT hash, result, receipt FROM batches WHERE origin=? ORDER BY received_ms DESC LIMIT ?",
            (origin, limit),
        ).fetchall()
        return [Receipt(bytes(h), str(r), bytes(rc)) for h, r, rc in rows]

    def record_batch(
        self,
        batch_hash: bytes,
        origin: str,
        epoch: int,
        first_seq: int,
        last_seq: int,
        *,
        now_ms: int,
        result: str,
        applied: int,
        quarantined: int,
        receipt: bytes,
        source: str,
    ) -> None:
        self.conn.execute(
            "INSERT INTO batches (hash, origin, epoch, first_seq, last_seq, received_ms, result, applied,"
            " quarantined, receipt, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (batch_hash, origin, epoch, first_seq, last_seq, now_ms, result, applied, quarantined, receipt, source),
        )

    # -- horizons ---------------------------------------------------------------------------------

    def note_horizon(self, station: str, epoch: int, seq: int, feed: int) -> None:
        """A signed pull said: with its own changes written up to ``seq`` (in ``epoch``), the station had
        applied its feed up to ``feed``. Rows every change of which has arrived are dropped, but the
        newest of them, which the changes still on their way need."""
        self.conn.execute(
            "INSERT INTO horizons (station, epoch, seq, feed) VALUES (?,?,?,?)"
            " ON CONFLICT (station, epoch, seq) DO UPDATE SET feed=MAX(horizons.feed, excluded.feed)",
            (station, epoch, seq, feed),
        )
        arrived = self.cursor(station, epoch).next_seq - 1
        self.conn.execute(
            "DELETE FROM horizons WHERE station=? AND epoch=? AND seq < (SELECT MAX(seq) FROM horizons"
            " WHERE station=? AND epoch=? AND seq <= ?)",
            (station, epoch, station, epoch, arrived),
        )

    def horizon(self, station: str, epoch: int, seq: int) -> int:
        """How far its feed the station had applied before it wrote change ``seq`` (0: not known)."""
        row = self.conn.execute(
            "SELECT MAX(feed) FROM horizons WHERE station=? AND epoch=? AND seq<?", (station, epoch, seq)
        ).fetchone()
        return int(row[0] or 0)

    # -- the change log, by place in a chain -----------------------------------------------------------

    def logged_change(self, origin: str, epoch: int, seq: int) -> LoggedChange | None:
        """The logged change at this place of its origin's chain, or None."""
        row = self.conn.execute(
            "SELECT hlc, entity, rid, fields, base FROM changes WHERE origin=? AND epoch=? AND seq=?",
            (origin, epoch, seq),
        ).fetchone()
        if row is None:
            return None
        return LoggedChange(int(row[0]), str(row[1]), str(row[2]), bytes(row[3]), bytes(row[4]))

    def is_logged(self, origin: str, epoch: int, seq: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM changes WHERE origin=? AND epoch=? AND seq=?", (origin, epoch, seq))
        return row.fetchone() is not None

    def held_seqs_between(self, origin: str, epoch: int, first: int, last: int) -> int:
        """How many seqs in [first, last] of this origin and epoch the hub holds: logged, or held in
        quarantine as the origin sent it (a copy re-sent by another station does not count)."""
        row = self.conn.execute(
            "SELECT COUNT(DISTINCT seq) FROM (SELECT seq FROM changes WHERE origin=? AND epoch=?"
            " AND seq BETWEEN ? AND ? UNION SELECT seq FROM quarantine WHERE origin=? AND epoch=?"
            " AND whole_batch=0 AND sender IN (origin, '') AND seq BETWEEN ? AND ?) AS held",
            (origin, epoch, first, last, origin, epoch, first, last),
        ).fetchone()
        return int(row[0])

    def last_change_rowid(self) -> int:
        """The position of the newest logged change (0 before any): the log only grows."""
        return int(self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM changes").fetchone()[0])
