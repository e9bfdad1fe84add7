"""The hub's schema: its migration sets, applied in order when a store opens (``hub/store.py``).

``sanji.hub`` holds the hub's own tables (described in ``hub/store.py``); ``sanji.hub.blobs`` the
photo and scan index of ``hub/blobindex.py``; ``sanji.hub.dashboard`` the operator dashboard's sessions,
sign-in failures, audit and catalogue drafts. The set and function names are what existing folders
recorded as applied, so they never change; a new table is a new function at the end of its set.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

from protocol.codec import pack

migrations = Migrations("sanji.hub")


@migrations()
def m001_hub_tables(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE hub_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    db.execute(
        """CREATE TABLE stations (
            code TEXT PRIMARY KEY, name TEXT NOT NULL, tier TEXT NOT NULL, parent TEXT NOT NULL DEFAULT '',
            sign_pub BLOB, seal_pub BLOB, sign_key_id TEXT NOT NULL DEFAULT '',
            revoked INTEGER NOT NULL DEFAULT 0, registered_ms INTEGER NOT NULL, enrolled_ms INTEGER,
            last_seen_ms INTEGER, last_error TEXT NOT NULL DEFAULT '', backlog INTEGER NOT NULL DEFAULT 0,
            catalogue_version INTEGER NOT NULL DEFAULT 0, feed_ack INTEGER NOT NULL DEFAULT 0,
            clock_skew_ms INTEGER NOT NULL DEFAULT 0)"""
    )
    db.execute(
        """CREATE TABLE tokens (
            hash BLOB PRIMARY KEY, station TEXT NOT NULL, tier TEXT NOT NULL,
            expires_ms INTEGER NOT NULL, used_ms INTEGER)"""
    )
    db.execute(
        """CREATE TABLE cursors (
            origin TEXT NOT NULL, epoch INTEGER NOT NULL, next_seq INTEGER NOT NULL, last_hash BLOB NOT NULL,
            PRIMARY KEY (origin, epoch)) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE batches (
            hash BLOB PRIMARY KEY, origin TEXT NOT NULL, epoch INTEGER NOT NULL,
            first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, received_ms INTEGER NOT NULL,
            result TEXT NOT NULL, applied INTEGER NOT NULL, quarantined INTEGER NOT NULL,
            receipt BLOB NOT NULL, source TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX batches_range ON batches(origin, epoch, first_seq, last_seq)")
    db.execute(
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY, origin TEXT NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
            batch BLOB NOT NULL, raw BLOB NOT NULL, whole_batch INTEGER NOT NULL, reason TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'open', created_ms INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '')"""
    )
    db.execute(
        """CREATE TABLE rejected (
            id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, source TEXT NOT NULL,
            origin TEXT NOT NULL, reason TEXT NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL,
            station TEXT NOT NULL, detail TEXT NOT NULL)"""
    )
    db.execute(
        "CREATE TABLE feed (station TEXT NOT NULL, change INTEGER NOT NULL, PRIMARY KEY (station, change))"
        " WITHOUT ROWID"
    )
    db.execute(
        """CREATE TABLE releases (
            version INTEGER PRIMARY KEY, frame BLOB NOT NULL, issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL, published_ms INTEGER NOT NULL)"""
    )
    db.execute("CREATE TABLE operators (user TEXT PRIMARY KEY, hash TEXT NOT NULL, created_ms INTEGER NOT NULL)")


@migrations()
def m002_nightly(db: sqlite_utils.Database) -> None:
    # One row per anti-entropy session a station ran against us; the morning report sums them.
    db.execute(
        """CREATE TABLE reconciliations (
            id INTEGER PRIMARY KEY, station TEXT NOT NULL, at_ms INTEGER NOT NULL, buckets INTEGER NOT NULL,
            divergent INTEGER NOT NULL, repaired INTEGER NOT NULL, bytes INTEGER NOT NULL,
            summary_match INTEGER)"""
    )
    # One row per run of the nightly job, whether scheduled, caught up at start-up, or on demand.
    db.execute(
        """CREATE TABLE nightly_runs (
            id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL, ended_ms INTEGER, trigger TEXT NOT NULL,
            outcome TEXT NOT NULL DEFAULT 'running', figures BLOB)"""
    )
    # The morning report of each run, as a packed map; the CLI and the dashboard read it from here.
    db.execute(
        "CREATE TABLE reports (run INTEGER PRIMARY KEY REFERENCES nightly_runs(id), day TEXT NOT NULL,"
        " report BLOB NOT NULL)"
    )
    # Two offline stations can, after a restore from backup, hand out the same number; keep both and
    # let the report flag it instead of refusing an authentic application.
    db.execute("DROP INDEX applications_number")
    db.execute("CREATE INDEX applications_number ON applications(number)")


@migrations()
def m003_feed_lookups(db: sqlite_utils.Database) -> None:
    # Every feed page names the revoked stations (and a township's, the field devices): without these
    # each pull read every station's row, which showed when a thousand stations pulled at once.
    db.execute("CREATE INDEX stations_revoked ON stations(code) WHERE revoked=1")
    db.execute("CREATE INDEX stations_field ON stations(code) WHERE tier='field' AND revoked=0")


@migrations()
def m004_quarantine_codes(db: sqlite_utils.Database) -> None:
    # A held change carries the admission's stable refusal code (for --json and filters) and who
    # actually sent it: a change re-sent during reconciliation may claim another origin, and must
    # never be shown as signed by that origin.
    db.execute("ALTER TABLE quarantine ADD COLUMN code TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE quarantine ADD COLUMN sender TEXT NOT NULL DEFAULT ''")


@migrations()
def m005_refusals_per_address_hour(db: sqlite_utils.Database) -> None:
    # One row per refused request or file let anyone who can reach the port add rows without bound.
    # Refusals are now counted in one row per (source, hour, code); rows already kept are folded the
    # same way, the latest origin and reason of each group standing for it.
    db.execute(
        """CREATE TABLE rejected_new (
            id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, source TEXT NOT NULL, origin TEXT NOT NULL,
            reason TEXT NOT NULL, hour INTEGER NOT NULL, code TEXT NOT NULL, count INTEGER NOT NULL,
            first_ms INTEGER NOT NULL, UNIQUE (source, hour, code))"""
    )
    code = (
        "CASE WHEN instr(reason, ':') BETWEEN 2 AND 33 AND substr(reason, 1, instr(reason, ':') - 1)"
        " NOT GLOB '*[^a-z_]*' THEN substr(reason, 1, instr(reason, ':') - 1) ELSE 'other' END"
    )
    # SQLite takes the bare columns (origin, reason) from the row that holds MAX(at_ms).
    db.execute(
        "INSERT INTO rejected_new (at_ms, source, origin, reason, hour, code, count, first_ms)"
        f" SELECT MAX(at_ms), source, origin, reason, at_ms / 3600000 AS h, {code} AS c, COUNT(*), MIN(at_ms)"
        " FROM rejected GROUP BY source, h, c ORDER BY MAX(id)"
    )
    db.execute("DROP TABLE rejected")
    db.execute("ALTER TABLE rejected_new RENAME TO rejected")
    db.execute("CREATE INDEX rejected_at ON rejected(at_ms)")
    db.execute("CREATE INDEX rejected_hour ON rejected(hour)")
    db.execute("CREATE INDEX rejected_origin ON rejected(origin, id)")
    db.execute("ALTER TABLE alerts ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE alerts ADD COLUMN hour INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE alerts SET hour = at_ms / 3600000")
    db.execute("CREATE INDEX alerts_per_hour ON alerts(kind, station, hour)")


@migrations()
def m006_delivery_horizons(db: sqlite_utils.Database) -> None:
    # What each station had applied of its feed when it had written up to a seq (from its signed pulls):
    # a change it wrote later was written having seen those entries (sync/admission.py: seen_newer).
    db.execute(
        """CREATE TABLE horizons (
            station TEXT NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL, feed INTEGER NOT NULL,
            PRIMARY KEY (station, epoch, seq)) WITHOUT ROWID"""
    )


@migrations()
def m007_exchange_via(db: sqlite_utils.Database) -> None:
    # How a station last reached us ('network' or 'usb'): a station that only exchanges files is not
    # "online" for a quarter of an hour after each import. status_at_ms: the station's own clock in the
    # newest status it carried on a stick, so an older stick found later cannot roll its figures back.
    db.execute("ALTER TABLE stations ADD COLUMN last_via TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE stations ADD COLUMN status_at_ms INTEGER NOT NULL DEFAULT 0")


@migrations()
def m301_tracking_codes(db: sqlite_utils.Database) -> None:
    # Citizens' tracking codes as the hub's keyed hashes (hub/tracking.py): the only place a code leaves
    # a trace at the hub, so purging a row forgets it. One code per application.
    db.execute(
        """CREATE TABLE tracking_codes (
            hash TEXT PRIMARY KEY, application TEXT NOT NULL UNIQUE, added_ms INTEGER NOT NULL)"""
    )


@migrations()
def m101_quarantine_pages(db: sqlite_utils.Database) -> None:
    # The quarantine page lists open held changes newest first, a page at a time by id (hub/review_lists.py).
    db.execute("CREATE INDEX quarantine_state_id ON quarantine(state, id)")


# The tables of hub/blobindex.py. They were created on first use, behind a lock, with a race between two
# processes; as a set of the store they exist from its first open, and a folder made before gains them at
# its next open. The set name is the one the folders recorded.
blob_migrations = Migrations("sanji.hub.blobs")


@blob_migrations()
def m001_blob_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL,
            station TEXT NOT NULL,        -- who sent it first
            source TEXT NOT NULL,         -- http or file:NAME
            received_ms INTEGER NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE blob_uploads (
            sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, station TEXT NOT NULL, started_ms INTEGER NOT NULL)"""
    )


# The tables of the operator dashboard (hub/dashboard_auth.py and its pages). They were created when
# `hub serve` started the dashboard, so a hub folder only ever opened by the CLI lacked them; as a set
# of the store they exist from its first open. The set name is the one the folders recorded.
dashboard_migrations = Migrations("sanji.hub.dashboard")


@dashboard_migrations()
def m001_dashboard(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE dash_sessions (
            token_hash BLOB PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL,
            created_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL, remote TEXT NOT NULL DEFAULT '')"""
    )
    db.execute(
        "CREATE TABLE dash_login_failures (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, user TEXT NOT NULL,"
        " remote TEXT NOT NULL)"
    )
    db.execute(
        """CREATE TABLE dash_audit (
            id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
            target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
            remote TEXT NOT NULL DEFAULT '')"""
    )
    # An uploaded catalogue waits here between "preview the diff" and "publish".
    db.execute(
        "CREATE TABLE dash_drafts (id INTEGER PRIMARY KEY, user TEXT NOT NULL, base_version INTEGER NOT NULL,"
        " doc TEXT NOT NULL, filename TEXT NOT NULL, created_ms INTEGER NOT NULL)"
    )


# Issue 20: the nightly job works from what changed since its last run, off the event loop.
@migrations()
def m201_nightly_facts(db: sqlite_utils.Database) -> None:
    # Deferred (容缺) materials and ratings, kept by the nightly job (hub/nightly_facts.py) from the
    # records touched since its last run: the report reads them here instead of unpacking every open
    # application's record and every rating every night.
    db.execute(
        "CREATE TABLE nightly_materials (application TEXT NOT NULL, material TEXT NOT NULL, due TEXT NOT NULL,"
        " PRIMARY KEY (application, material)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX nightly_materials_due ON nightly_materials(due)")
    # A rating's station is its application's (fixed once written), NULL until the application is here.
    db.execute(
        "CREATE TABLE nightly_ratings (id TEXT PRIMARY KEY, application TEXT NOT NULL, station TEXT,"
        " score INTEGER, comment) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX nightly_ratings_application ON nightly_ratings(application)")
    db.execute("CREATE INDEX nightly_ratings_station ON nightly_ratings(station, score)")
    db.execute("CREATE INDEX nightly_ratings_bad ON nightly_ratings(station, id) WHERE score <= 2")
    # Red and yellow warnings read only the open promised applications due by a day; the statuses are
    # hub/store/morning_report.py's OPEN_STATUSES, spelled out so the planner can match the query to the index.
    db.execute(
        "CREATE INDEX nightly_open_due ON applications(due_date) WHERE kind='promised' AND status IN"
        " ('accepted', 'supplement_requested', 'under_review', 'inspecting', 'approved', 'denied')"
    )
    # The report sums the stations' reconciliations since the last run: a range, not a scan of years.
    db.execute("CREATE INDEX reconciliations_at ON reconciliations(at_ms)")


@migrations()
def m202_report_summaries(db: sqlite_utils.Database) -> None:
    # Reports are kept for the last 30 runs only (hub/nightly.py, KEEP_REPORTS); every run keeps this
    # small summary of its report for as long as the run itself is listed.
    db.execute("ALTER TABLE nightly_runs ADD COLUMN summary BLOB")


# What the morning report counts, kept as the projection changes (issue 20: the nightly job's queries
# all have an index or a kept table; tests/test_query_plans.py).
_IMMEDIATE = "COALESCE({0}.kind = 'immediate', 0)"
_CLOSED = "COALESCE({0}.status IN ('completed', 'delivered'), 0)"
# Closed on time: by its due date, on the day (China time) of its last change (hub/nightly_report.py).
_ON_TIME = (
    "COALESCE({0}.status IN ('completed', 'delivered') AND ({0}.due_date IS NULL OR {0}.due_date = ''"
    " OR date(({0}.updated_hlc >> 16) / 1000 + 8 * 3600, 'unixepoch') <= {0}.due_date), 0)"
)


def _statistics_key(row: str) -> str:
    return ", ".join(
        [f"COALESCE({row}.station, '')", _IMMEDIATE.format(row), _CLOSED.format(row), _ON_TIME.format(row)]
    )


@migrations()
def m203_station_statistics(db: sqlite_utils.Database) -> None:
    # The statistics part of the report was one GROUP BY over every application (1.9 s at a million):
    # per station how many, how many immediate, closed, closed on time. Kept here by triggers the way
    # replica/list_schema.py keeps application_counts; the report sums a few hundred rows.
    db.execute(
        "CREATE TABLE station_statistics (station TEXT NOT NULL, immediate INTEGER NOT NULL,"
        " closed INTEGER NOT NULL, on_time INTEGER NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (station, immediate, closed, on_time)) WITHOUT ROWID"
    )
    key = _statistics_key("a")
    db.execute(f"INSERT INTO station_statistics SELECT {key}, COUNT(*) FROM applications a GROUP BY 1, 2, 3, 4")
    cols = "station, immediate, closed, on_time"
    add = (
        f"INSERT INTO station_statistics ({cols}, n) VALUES ({_statistics_key('NEW')}, 1)"
        f" ON CONFLICT ({cols}) DO UPDATE SET n = n + 1"
    )
    drop = f"UPDATE station_statistics SET n = n - 1 WHERE ({cols}) = ({_statistics_key('OLD')})"
    # updated_hlc moves with every change to a record: on time is judged on the day of the last one.
    watched = "station, kind, status, due_date, updated_hlc"
    db.execute(f"CREATE TRIGGER station_statistics_insert AFTER INSERT ON applications BEGIN {add}; END")
    db.execute(f"CREATE TRIGGER station_statistics_delete AFTER DELETE ON applications BEGIN {drop}; END")
    db.execute(
        f"CREATE TRIGGER station_statistics_update AFTER UPDATE OF {watched} ON applications BEGIN {drop}; {add}; END"
    )
    # Numbers held twice (possible only after a station's raw copy-back) were another GROUP BY over
    # every application each night. Found once here; then each night re-checks only the numbers of the
    # applications changed since (hub/nightly_numbers.py, from the mark set here).
    db.execute("CREATE TABLE nightly_duplicate_numbers (number TEXT PRIMARY KEY) WITHOUT ROWID")
    db.execute(
        "INSERT INTO nightly_duplicate_numbers SELECT number FROM applications WHERE number IS NOT NULL"
        " GROUP BY number HAVING COUNT(*) > 1"
    )
    upto = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM changes").fetchone()[0]
    db.execute(
        "INSERT INTO hub_meta (key, value) VALUES ('nightly_numbers_rowid', ?)"
        " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (pack(int(upto)),),
    )


# Issue 16: station staff accounts made at the hub (hub/staff.py) and sent down each station's feed.
@migrations()
def m401_station_staff(db: sqlite_utils.Database) -> None:
    # Never a password, nor the private half of the grant key: only what the station needs to check a
    # sign-in (the scrypt hash) and to pass the data key on (the grant's public key, sync/staff_grant.py).
    # `version` grows with every change, from staff_clock, so a station never puts an older state back
    # and a pull asks only for what changed since the version it holds.
    db.execute(
        """CREATE TABLE station_staff (
            station TEXT NOT NULL, "user" TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
            enabled INTEGER NOT NULL, password_hash TEXT NOT NULL, grant_key TEXT NOT NULL,
            version INTEGER NOT NULL, created_ms INTEGER NOT NULL, changed_ms INTEGER NOT NULL,
            PRIMARY KEY (station, "user"))"""
    )
    db.execute("CREATE INDEX station_staff_version ON station_staff(station, version)")
    # One row: the last version handed out. Taken by an UPDATE, whose row lock (on PostgreSQL) keeps
    # versions in commit order, as feed_clock does for feed positions (hub/store/pg_feed.py).
    db.execute("CREATE TABLE staff_clock (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
    db.execute("INSERT INTO staff_clock (id, version) VALUES (1, 0)")


@migrations()
def m402_password_version(db: sqlite_utils.Database) -> None:
    # The version at which the hub itself last set an account's password (add-staff, enable-staff): a
    # password changed at the station travels up (sync/staff_change.py) and is applied only when the
    # station had seen that version; 0 for the accounts made before, so their stations' changes apply.
    db.execute("ALTER TABLE station_staff ADD COLUMN password_version INTEGER NOT NULL DEFAULT 0")
