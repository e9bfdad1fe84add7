"""The merged records as the hub store answers for them: applications, tasks, reports, conflicts and
citizens' tracking codes.

The records, their change log and the ``applications`` projection are replica/'s tables, shared with
the stations (``replica/records.py``, ``replica/listing.py``); ``conflicts`` holds the conflict
records the fold produced; ``tracking_codes`` the hub's keyed hashes of citizens' tracking codes
(``hub/tracking.py``). Where replica/ already holds the query (the listing, a record's tasks), the
method here hands it this store's connection, so no module above the store needs the connection.
A part of :class:`hub.store.HubStore`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from replica import inspection as shared_inspection
from replica import listing
from replica.admission_facts import StatusVersion, status_versions
from replica.records import RecordStore


class ConflictEntry(NamedTuple):
    """One conflict record: ``winner`` and ``loser`` are packed ``[hlc, origin, value]``."""

    entity: str
    record: str
    field: str
    winner: bytes
    loser: bytes
    resolved: bool


class ConflictRow(NamedTuple):
    """One conflict as the operator's listing shows it (``hub/operations.conflict_row``)."""

    id: str
    entity: str
    record: str
    field: str
    winner: bytes
    loser: bytes
    rule: str
    resolved: int
    resolution: str
    number: str | None


def tracked_application_on(conn: sqlite3.Connection, digest: str) -> str | None:
    """:meth:`Records.tracked_application` over a bare connection: only for ``hub.tracking.find``'s
    callers that still hand it ``hub.store.conn`` (``hub/web/track.py``); drop with that call."""
    row = conn.execute("SELECT application FROM tracking_codes WHERE hash=?", (digest,)).fetchone()
    return None if row is None else str(row[0])


class Records:
    """The records' part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    @property
    def replica_connection(self) -> sqlite3.Connection:
        """The connection for replica/'s shared readers that take one beside other arguments
        (``replica.admission_facts.build_facts``, ``replica.inspection.plan`` and ``resume_fields``):
        their SQL is the station's and the hub's alike, and a second backend must answer it too."""
        return self.conn

    # -- applications ---------------------------------------------------------------------------------

    def application_id(self, number: str) -> str | None:
        """The id of the application with this number, or None."""
        row = self.conn.execute("SELECT id FROM applications WHERE number=?", (number,)).fetchone()
        return None if row is None else str(row[0])

    def iter_applications(
        self, *, station: str | None = None, status: str | None = None, reveal: bool = False
    ) -> Iterator[dict[str, object]]:
        """Every application held (``replica.listing.iter_applications``), streamed."""
        return listing.iter_applications(self.conn, station=station, status=status, reveal=reveal)

    def list_applications(
        self, *, station: str | None = None, status: str | None = None, reveal: bool = False
    ) -> list[dict[str, object]]:
        return listing.list_applications(self.conn, station=station, status=status, reveal=reveal)

    def application_counts(self) -> dict[str, int]:
        """How many applications each accepting station has, as the projection keeps them."""
        return listing.station_counts(self.conn)

    def application_page(
        self,
        filters: listing.Filters,
        *,
        older_than: listing.Key | None = None,
        newer_than: listing.Key | None = None,
        size: int = listing.PAGE_SIZE,
    ) -> listing.Page:
        """One keyset page of the applications list (``replica.listing.page``)."""
        return listing.page(self.conn, filters, older_than=older_than, newer_than=newer_than, size=size)

    def status_versions(self, app_id: str) -> list[StatusVersion]:
        """Every status the application has held here, from its logged changes."""
        return status_versions(self.conn, app_id)

    def applications_held(self, station: str = "", status: str = "") -> int:
        """How many applications the hub holds (optionally of one station, in one status)."""
        return listing.held(self.conn, station, status)

    # -- tasks and reports --------------------------------------------------------------------------

    def has_task(self, app_id: str) -> bool:
        """Whether any inspection task was ever assigned for this application."""
        row = self.conn.execute("SELECT 1 FROM records WHERE entity='task' AND application=?", (app_id,))
        return row.fetchone() is not None

    def task_ids(self) -> list[tuple[str, str]]:
        """(task id, application id) of every task, newest first (ids are UUIDv7)."""
        rows = self.conn.execute("SELECT id, application FROM records WHERE entity='task' ORDER BY id DESC")
        return [(str(t), str(a)) for t, a in rows.fetchall()]

    def tasks_of(self, records: RecordStore, app_id: str) -> list[tuple[str, dict[str, object]]]:
        """(task id, fields) of every task for an application, oldest first (``replica/inspection.py``)."""
        return shared_inspection.tasks_of(self.conn, records, app_id)

    def report_states(self) -> Iterator[bytes]:
        """The packed merged state of every report record."""
        for (state,) in self.conn.execute("SELECT state FROM records WHERE entity='report'"):
            yield bytes(state)

    def report_fields_from(self, origin: str) -> Iterator[bytes]:
        """The packed fields of every logged report change ``origin`` wrote."""
        rows = self.conn.execute("SELECT fields FROM changes WHERE origin=? AND entity='report'", (origin,))
        for (fields,) in rows:
            yield bytes(fields)

    # -- conflicts ------------------------------------------------------------------------------------

    def conflict(self, conflict_id: str) -> ConflictEntry | None:
        row = self.conn.execute(
            "SELECT entity, record, field, winner, loser, resolved FROM conflicts WHERE id=?", (conflict_id,)
        ).fetchone()
        if row is None:
            return None
        return ConflictEntry(str(row[0]), str(row[1]), str(row[2]), bytes(row[3]), bytes(row[4]), bool(row[5]))

    def close_conflict(self, conflict_id: str, resolution: str) -> None:
        """Mark a conflict settled, with the operator's words of how."""
        self.conn.execute("UPDATE conflicts SET resolved=1, resolution=? WHERE id=?", (resolution, conflict_id))

    def conflict_listing(self, *, include_resolved: bool = False) -> list[ConflictRow]:
        """Every conflict (the open ones only, unless ``include_resolved``) with its application's number."""
        sql = (
            "SELECT c.id, c.entity, c.record, c.field, c.winner, c.loser, c.rule, c.resolved, c.resolution, a.number"
            " FROM conflicts c LEFT JOIN applications a ON a.id=c.record"
        )
        if not include_resolved:
            sql += " WHERE c.resolved=0"
        return [ConflictRow(*r) for r in self.conn.execute(sql)]

    # -- tracking codes -------------------------------------------------------------------------------

    def add_tracking_code(self, digest: str, application: str, now_ms: int) -> None:
        """Index a tracking code's keyed hash (the first code an application carried stays)."""
        self.conn.execute(
            "INSERT INTO tracking_codes (hash, application, added_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (digest, application, now_ms),
        )

    def tracked_application(self, digest: str) -> str | None:
        """The application whose tracking code has this keyed hash, or None."""
        return tracked_application_on(self.conn, digest)

    def tracked_applications(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT application FROM tracking_codes").fetchall()]

    def forget_tracking(self, applications: Iterable[str]) -> None:
        """Drop the tracking hashes of these applications: their codes find nothing any more."""
        self.conn.executemany("DELETE FROM tracking_codes WHERE application=?", [(a,) for a in applications])
