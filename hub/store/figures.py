"""The figures the hub reports (status, dashboard, metrics), each a named query of the hub store.

A part of :class:`hub.store.HubStore`. Refusals and alerts are counted rows (``hub/store/refusals.py``):
their figures are how many there were, not how many rows.
"""

from __future__ import annotations

import sqlite3

# The tables the deprecated ``count`` still answers for.
_COUNTED = frozenset({"applications", "conflicts", "quarantine", "rejected", "alerts", "batches", "changes"})


class Figures:
    """The figures' part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def _one(self, sql: str, args: tuple[object, ...] = ()) -> int:
        return int(self.conn.execute(sql, args).fetchone()[0])

    def open_conflicts(self) -> int:
        """Conflicts no operator has settled yet."""
        return self._one("SELECT COUNT(*) FROM conflicts WHERE resolved=0")

    def open_quarantine(self) -> int:
        """Held rows no operator has released or rejected yet."""
        return self._one("SELECT COUNT(*) FROM quarantine WHERE state='open'")

    def refusals_since(self, after_ms: int) -> int:
        """How many refusals were noted in rows last written after ``after_ms``."""
        return self._one("SELECT COALESCE(SUM(count), 0) FROM rejected WHERE at_ms>?", (after_ms,))

    def batches_taken(self, origin: str | None = None) -> int:
        """Batches taken (and recorded with their receipt), from every origin or from ``origin``."""
        if origin is None:
            return self._one("SELECT COUNT(*) FROM batches")
        return self._one("SELECT COUNT(*) FROM batches WHERE origin=?", (origin,))

    def changes_logged(self, origin: str | None = None) -> int:
        """Changes in the hub's log, from every origin or from ``origin``."""
        if origin is None:
            return self._one("SELECT COUNT(*) FROM changes")
        return self._one("SELECT COUNT(*) FROM changes WHERE origin=?", (origin,))

    def count(self, table: str, where: str = "", args: tuple[object, ...] = ()) -> int:
        """Deprecated: raw WHERE text cannot cross to another backend. Use the named figures above.

        No hub module calls it any more; the tests still count tables with it (alerts, refusals,
        quarantine by state). Remove it once they ask named figures."""
        if table not in _COUNTED:
            raise ValueError(table)
        what = "COALESCE(SUM(count), 0)" if table in {"rejected", "alerts"} else "COUNT(*)"
        return self._one(f"SELECT {what} FROM {table}" + (f" WHERE {where}" if where else ""), args)
