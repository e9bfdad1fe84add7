"""The totals ``/metrics`` reports that survive a restart: read from the tables at scrape time."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class ChangesTaken:
    applied: int  # changes applied from stations' batches
    quarantined: int  # changes held for review at ingest


class FigureReads:
    conn: sqlite3.Connection

    def batches_by_result(self) -> dict[str, int]:
        """How many batches the hub took, by result (applied, duplicate, ...)."""
        return {str(r): int(n) for r, n in self.conn.execute("SELECT result, COUNT(*) FROM batches GROUP BY result")}

    def refusals_by_code(self) -> dict[str, int]:
        """How many requests and files were refused, by the reason's code (refusals are counted rows)."""
        rows = self.conn.execute("SELECT code, SUM(count) FROM rejected GROUP BY code")
        return {str(code): int(n) for code, n in rows}

    def changes_taken(self) -> ChangesTaken:
        row = self.conn.execute(
            "SELECT COALESCE(SUM(applied), 0), COALESCE(SUM(quarantined), 0) FROM batches"
        ).fetchone()
        return ChangesTaken(int(row[0]), int(row[1]))

    def alerts_by_kind(self) -> dict[str, int]:
        """How many security alerts were raised, by kind (alerts are counted rows)."""
        return {str(k): int(n) for k, n in self.conn.execute("SELECT kind, SUM(count) FROM alerts GROUP BY kind")}
