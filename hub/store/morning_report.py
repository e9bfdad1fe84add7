"""What the nightly job's morning report reads (``hub/nightly_report.py``): open promised applications
due by a day (index ``nightly_open_due``), 容缺 materials past their day (``nightly_materials``), the
kept per-station statistics (``station_statistics``), one day's acceptances (a range of
``applications_accepted``), ratings (``nightly_ratings``) and the stations' reconciliations since a time.
Rows come back as plain tuples in the order each docstring names."""

from __future__ import annotations

import sqlite3

# The statuses of an open file, as the index nightly_open_due (hub/schema.py m201) spells them: the
# query must name them the same way for the planner to use that index.
OPEN_STATUSES = ("accepted", "supplement_requested", "under_review", "inspecting", "approved", "denied")
_OPEN_SQL = f"status IN ({', '.join(repr(s) for s in OPEN_STATUSES)})"


class MorningReport:
    """The morning report's part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def promised_open_due_by(self, day: str) -> list[tuple[object, ...]]:
        """(number, station, item, status, applicant_name, due_date) of the open promised applications
        due on or before ``day`` and not paused, soonest first."""
        return self.conn.execute(
            "SELECT number, station, item, status, applicant_name, due_date FROM applications"
            f" WHERE kind='promised' AND {_OPEN_SQL} AND due_date <= ? AND due_date != '' AND paused = 0"
            " ORDER BY due_date",
            (day,),
        ).fetchall()

    def materials_due_before(self, day: str) -> list[tuple[object, ...]]:
        """(number, station, material, due) of deferred materials due before ``day`` on open files."""
        return self.conn.execute(
            "SELECT a.number, a.station, m.material, m.due FROM nightly_materials m"
            f" JOIN applications a ON a.id = m.application WHERE m.due < ? AND a.{_OPEN_SQL} ORDER BY m.due",
            (day,),
        ).fetchall()

    def station_statistics(self) -> list[tuple[object, ...]]:
        """(station, immediate, closed, on_time, n): the counts the triggers keep (m203)."""
        return self.conn.execute(
            "SELECT station, immediate, closed, on_time, n FROM station_statistics WHERE n > 0"
        ).fetchall()

    def accepted_between(self, first_day: str, next_day: str) -> list[tuple[object, ...]]:
        """(station, count) of applications accepted from ``first_day`` up to (not into) ``next_day``."""
        return self.conn.execute(
            "SELECT station, COUNT(*) FROM applications WHERE accepted_at >= ? AND accepted_at < ? GROUP BY station",
            (first_day, next_day),
        ).fetchall()

    def ratings_per_station(self) -> list[tuple[object, ...]]:
        """(station, ratings, sum of scores) for every station with a scored rating."""
        return self.conn.execute(
            "SELECT station, COUNT(*), SUM(score) FROM nightly_ratings WHERE station IS NOT NULL AND score IS NOT NULL"
            " GROUP BY station"
        ).fetchall()

    def bad_reviews(self) -> list[tuple[object, ...]]:
        """(station, score, comment) of ratings of 2 or less, by station."""
        return self.conn.execute(
            "SELECT station, score, comment FROM nightly_ratings WHERE score <= 2 AND station IS NOT NULL"
            " ORDER BY station, id"
        ).fetchall()

    def reconciliations_since(self, since_ms: int) -> tuple[int, int, int, int]:
        """(stations checked, sessions that diverged, changes repaired, summary mismatches) since then."""
        row = self.conn.execute(
            "SELECT COUNT(DISTINCT station), COALESCE(SUM(CASE WHEN divergent > 0 THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(repaired), 0), COALESCE(SUM(CASE WHEN summary_match = 0 THEN 1 ELSE 0 END), 0)"
            " FROM reconciliations WHERE at_ms > ?",
            (since_ms,),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def records_held(self) -> int:
        """How many records the hub holds (every entity)."""
        return int(self.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
