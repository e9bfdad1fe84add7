"""The nightly job's own bookkeeping (``hub/nightly.py``): its runs (``nightly_runs``), the reports of
the last runs (``reports``), and the refusal notes it prunes. Figures, summaries and reports are
stored packed (canonical msgpack) as the job hands them over."""

from __future__ import annotations

import sqlite3


class NightlyRuns:
    """The nightly runs' part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def start_run(self, started_ms: int, trigger: str) -> int:
        """A new run, not ended yet; its id. Call inside a transaction."""
        cur = self.conn.execute("INSERT INTO nightly_runs (started_ms, trigger) VALUES (?, ?)", (started_ms, trigger))
        return int(cur.lastrowid or 0)

    def end_run(
        self,
        run_id: int,
        ended_ms: int,
        outcome: str,
        figures: bytes,
        summary: bytes,
        day: str,
        report: bytes,
        keep: int,
    ) -> None:
        """Record how a run ended and its report, keeping the reports of the newest ``keep`` runs only
        (older runs keep their figures and summary). Call inside a transaction."""
        self.conn.execute(
            "UPDATE nightly_runs SET ended_ms=?, outcome=?, figures=?, summary=? WHERE id=?",
            (ended_ms, outcome, figures, summary, run_id),
        )
        self.conn.execute("INSERT INTO reports (run, day, report) VALUES (?,?,?)", (run_id, day, report))
        self.conn.execute(
            "DELETE FROM reports WHERE run < (SELECT MIN(run) FROM"
            " (SELECT run FROM reports ORDER BY run DESC LIMIT ?) AS kept)",
            (keep,),
        )

    def last_run_start(self) -> int | None:
        """When the newest run that is not still running started, or None before any."""
        row = self.conn.execute("SELECT MAX(started_ms) FROM nightly_runs WHERE outcome!='running'").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def recent_runs(self, limit: int) -> list[tuple[object, ...]]:
        """(id, started_ms, ended_ms, trigger, outcome, figures, summary) of the newest runs first."""
        return self.conn.execute(
            "SELECT id, started_ms, ended_ms, trigger, outcome, figures, summary FROM nightly_runs"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()

    def prune_refusals_before(self, limit_ms: int) -> int:
        """Drop refusal notes last written before ``limit_ms``; how many. Call inside a transaction."""
        return int(self.conn.execute("DELETE FROM rejected WHERE at_ms < ?", (limit_ms,)).rowcount)
