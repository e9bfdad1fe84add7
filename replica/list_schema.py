"""The indexes and kept counts the lists read (issue 20: ten years of data), on the tables
``replica/records.py`` defines, for both sides: a set of its own (``sanji.replica.lists``), applied at
open by the hub's and the station's stores after the tables' own set.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

migrations = Migrations("sanji.replica.lists")


@migrations()
def m101_application_list_indexes(db: sqlite_utils.Database) -> None:
    # The lists page by keyset on (accepted_at, number), newest first (replica/listing.py): each filter
    # gets an index that yields its rows already in that order, so a page reads only the rows it shows.
    db.execute("CREATE INDEX applications_accepted ON applications(accepted_at, number)")
    db.execute("CREATE INDEX applications_station_accepted ON applications(station, accepted_at, number)")
    db.execute("CREATE INDEX applications_status_accepted ON applications(status, accepted_at, number)")
    # (station, status) grows the order columns so both filters together page without a sort too.
    db.execute("DROP INDEX applications_station_status")
    db.execute("CREATE INDEX applications_station_status ON applications(station, status, accepted_at, number)")
    # Due-date filters and counts: open statuses are few and small, so a range of due_date within each
    # is a short walk, where a scan would read every closed file of ten years.
    db.execute("CREATE INDEX applications_status_due ON applications(status, due_date)")
    # Search by the start of a name (the number has its unique index already).
    db.execute("CREATE INDEX applications_name ON applications(applicant_name)")


@migrations()
def m102_conflict_pages(db: sqlite_utils.Database) -> None:
    # The conflicts page lists open ones newest first, a page at a time by keyset (hub/review_lists.py).
    db.execute("CREATE INDEX conflicts_open ON conflicts(resolved, detected_hlc, id)")


@migrations()
def m103_application_counts(db: sqlite_utils.Database) -> None:
    # How many applications each station has accepted (per status), kept as the projection changes: the station
    # tree, the overview, `hub status`, /metrics and the lists' totals read it instead of counting a
    # million rows on every request. Only rows with a number and an acceptance time are applications
    # (the lists show no others). Triggers keep a derived count here, not a change: the change log is
    # still written only by the domain's commands.
    # Per station and status, so a status filter's total (half a million closed files) is a sum of a
    # few rows too.
    db.execute(
        "CREATE TABLE application_counts (station TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (station, status)) WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO application_counts SELECT COALESCE(station, ''), COALESCE(status, ''), COUNT(*)"
        " FROM applications WHERE number IS NOT NULL AND accepted_at IS NOT NULL GROUP BY 1, 2"
    )
    add = (
        "INSERT INTO application_counts (station, status, n)"
        " VALUES (COALESCE(NEW.station, ''), COALESCE(NEW.status, ''), 1)"
        " ON CONFLICT (station, status) DO UPDATE SET n = n + 1"
    )
    drop = (
        "UPDATE application_counts SET n = n - 1"
        " WHERE station = COALESCE(OLD.station, '') AND status = COALESCE(OLD.status, '')"
    )
    counted = "{0}.number IS NOT NULL AND {0}.accepted_at IS NOT NULL"
    db.execute(
        f"CREATE TRIGGER application_counts_insert AFTER INSERT ON applications"
        f" WHEN {counted.format('NEW')} BEGIN {add}; END"
    )
    db.execute(
        f"CREATE TRIGGER application_counts_delete AFTER DELETE ON applications"
        f" WHEN {counted.format('OLD')} BEGIN {drop}; END"
    )
    db.execute(
        f"CREATE TRIGGER application_counts_leave AFTER UPDATE OF station, status, number, accepted_at ON applications"
        f" WHEN {counted.format('OLD')} BEGIN {drop}; END"
    )
    db.execute(
        f"CREATE TRIGGER application_counts_enter AFTER UPDATE OF station, status, number, accepted_at ON applications"
        f" WHEN {counted.format('NEW')} BEGIN {add}; END"
    )


@migrations()
def m104_item_index(db: sqlite_utils.Database) -> None:
    # The hub's search also finds applications by item (低保, zdshbz: sync/catalogue_view.py); with its own
    # index each term of the search's OR is a range, never a walk of every row.
    db.execute("CREATE INDEX applications_item ON applications(item, accepted_at, number)")
