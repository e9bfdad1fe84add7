"""A station's scope at the hub, as the hub store reads it for reconciliation, and the sessions kept.

A station's scope is the changes it authored, the changes in its feed, and its own changes held in
quarantine (``hub/reconcile_scope.py`` joins the three; the held ones come from
:meth:`hub.store.quarantine.Quarantine.own_held_raws`). Rows are in the shape of
``replica.scope.Row``. Table ``reconciliations`` keeps one row per session a station reported.
A part of :class:`hub.store.HubStore`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from replica.scope import CHANGE_COLS, Row, select_records

_OWN = f"SELECT {CHANGE_COLS} FROM changes c WHERE c.origin=?"
_FED = f"SELECT {CHANGE_COLS} FROM feed f JOIN changes c ON c.rowid=f.change WHERE f.station=? AND c.origin!=?"


class Scope:
    """The reconciliation scope's part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def own_change_rows(self, station: str, keys: Iterable[str] | None = None) -> list[Row]:
        """The logged changes ``station`` authored (only those of records ``keys``, when given)."""
        if keys is not None:
            return select_records(self.conn, _OWN, (station,), keys)
        return list(self.conn.execute(_OWN, (station,)).fetchall())

    def fed_change_rows(self, station: str, keys: Iterable[str] | None = None) -> list[Row]:
        """The logged changes of others in ``station``'s feed (only those of records ``keys``)."""
        if keys is not None:
            return select_records(self.conn, _FED, (station, station), keys)
        return list(self.conn.execute(_FED, (station, station)).fetchall())

    def touched_records(self, station: str, after_rowid: int, upto_rowid: int) -> set[tuple[str, str]]:
        """(entity, id) of the records with a change logged in (after_rowid, upto_rowid] that is in
        ``station``'s scope: authored by it, or added to its feed."""
        own = self.conn.execute(
            "SELECT entity, rid FROM changes WHERE rowid > ? AND rowid <= ? AND origin=?",
            (after_rowid, upto_rowid, station),
        )
        fed = self.conn.execute(
            "SELECT c.entity, c.rid FROM feed f JOIN changes c ON c.rowid = f.change"
            " WHERE f.station=? AND f.change > ? AND f.change <= ?",
            (station, after_rowid, upto_rowid),
        )
        return {(str(e), str(r)) for e, r in [*own, *fed]}

    def status_counts(self, station: str) -> dict[str, int]:
        """How many of ``station``'s applications the hub holds in each status."""
        rows = self.conn.execute(
            "SELECT status, COUNT(*) FROM applications WHERE station=? GROUP BY status", (station,)
        ).fetchall()
        return {str(k): int(v) for k, v in rows}

    def record_reconciliation(
        self,
        station: str,
        at_ms: int,
        *,
        buckets: int,
        divergent: int,
        repaired: int,
        size: int,
        summary_match: bool | None,
    ) -> None:
        """Keep what a station reported of one reconciliation session (``size``: bytes exchanged)."""
        self.conn.execute(
            "INSERT INTO reconciliations (station, at_ms, buckets, divergent, repaired, bytes, summary_match)"
            " VALUES (?,?,?,?,?,?,?)",
            (station, at_ms, buckets, divergent, repaired, size, None if summary_match is None else int(summary_match)),
        )

    def reconciliations(self, station: str) -> list[dict[str, object]]:
        """The sessions ``station`` reported, oldest first."""
        rows = self.conn.execute(
            "SELECT at_ms, buckets, divergent, repaired, bytes, summary_match FROM reconciliations"
            " WHERE station=? ORDER BY at_ms, id",
            (station,),
        ).fetchall()
        keys = ("at_ms", "buckets", "divergent", "repaired", "bytes", "summary_match")
        return [dict(zip(keys, r, strict=True)) for r in rows]
