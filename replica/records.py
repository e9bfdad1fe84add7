"""Merged records, the change log and the application projection, shared by node and hub.

``records`` holds each record's merged cells (the fold's state, see ``sync/fold.py``). ``changes`` is
the log of every change this replica holds, its own and others', keyed by ``(origin, epoch, seq)`` so a
change is stored once however often it arrives; an application's history is read from it.
``applications`` is a plain projection of the merged application records for listing and searching.
``conflicts`` keeps concurrent edits the fold settled, for an operator to confirm or override.

Every method that writes expects to run inside ``replica.db.transaction``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlite_utils
from sqlite_utils import Migrations

from protocol.codec import pack, pack_map, unpack
from sync.change import Change
from sync.fold import Conflict, Record, apply_change, record_from_wire, record_to_wire, values
from sync.sealed_value import mask_of

migrations = Migrations("sanji.replica")


@migrations()
def m001_records_changes_projection(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE records (
            entity TEXT NOT NULL, id TEXT NOT NULL,
            state BLOB NOT NULL,          -- canonical msgpack of {field: [hlc, origin, value, base]}
            digest BLOB NOT NULL,         -- sha256 of the merged state: the Merkle leaf
            application TEXT NOT NULL,    -- the application this record belongs to (itself for one)
            PRIMARY KEY (entity, id)) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX records_application ON records(application)")
    db.execute(
        """CREATE TABLE changes (
            rowid INTEGER PRIMARY KEY,    -- arrival order here; the hub's feeds page by it
            origin TEXT NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
            hlc INTEGER NOT NULL, entity TEXT NOT NULL, rid TEXT NOT NULL,
            fields BLOB NOT NULL, base BLOB NOT NULL,
            application TEXT NOT NULL,
            UNIQUE (origin, epoch, seq))"""
    )
    db.execute("CREATE INDEX changes_application ON changes(application)")
    db.execute(
        """CREATE TABLE applications (
            id TEXT PRIMARY KEY, number TEXT, station TEXT, item TEXT, status TEXT,
            applicant_name TEXT, applicant_id TEXT, applicant_phone TEXT, address TEXT,
            accepted_at TEXT, due_date TEXT, paused INTEGER NOT NULL DEFAULT 0,
            catalogue_version INTEGER, theme TEXT, kind TEXT, decision TEXT, note TEXT,
            updated_hlc INTEGER NOT NULL)"""
    )
    db.execute("CREATE UNIQUE INDEX applications_number ON applications(number)")
    db.execute("CREATE INDEX applications_station_status ON applications(station, status)")
    db.execute(
        """CREATE TABLE conflicts (
            id TEXT PRIMARY KEY, entity TEXT NOT NULL, record TEXT NOT NULL, field TEXT NOT NULL,
            winner BLOB NOT NULL, loser BLOB NOT NULL,   -- packed cells [hlc, origin, value, base]
            rule TEXT NOT NULL, detected_hlc INTEGER NOT NULL,
            resolved INTEGER NOT NULL DEFAULT 0, resolution TEXT NOT NULL DEFAULT '')"""
    )


@migrations()
def m002_changes_by_record(db: sqlite_utils.Database) -> None:
    # Anti-entropy fetches the changes of a few differing records; without this it scans the log.
    db.execute("CREATE INDEX changes_record ON changes(entity, rid)")


@migrations()
def m003_records_without_digest(db: sqlite_utils.Database) -> None:
    # The digest of each merged state was written on every save and never read: anti-entropy's
    # leaves digest a record's changes (replica/scope.py), not its state. SQLite >= 3.35 drops columns.
    db.execute("ALTER TABLE records DROP COLUMN digest")


@migrations()
def m004_change_author(db: sqlite_utils.Database) -> None:
    # The staff member who made a change (issue 16), kept at station and hub alike for the history's
    # 经办人; '' for none, as every change logged before this column was.
    db.execute("ALTER TABLE changes ADD COLUMN author TEXT NOT NULL DEFAULT ''")


PROJECTED = (
    "number",
    "station",
    "item",
    "status",
    "applicant_name",
    "applicant_id",
    "applicant_phone",
    "address",
    "accepted_at",
    "due_date",
    "paused",
    "catalogue_version",
    "theme",
    "kind",
    "decision",
    "note",
)


@dataclass(frozen=True)
class Applied:
    """What applying a run of changes did."""

    applied: int
    duplicates: int
    conflicts: tuple[Conflict, ...]
    touched: frozenset[tuple[str, str]]
    logged: tuple[tuple[int, Change, str], ...]  # (log rowid, change, its application) for new ones


def application_of(change: Change, record: Record) -> str:
    """The application a record belongs to: itself, or the one its ``application`` field names."""
    if change.entity == "application":
        return change.id
    named = change.fields.get("application")
    if isinstance(named, str):
        return named
    cell = record.get("application")
    return str(cell[2]) if cell else ""


_PROJECT_COLS = ("id", *PROJECTED, "updated_hlc")
_PROJECT_SQL = (
    f"INSERT INTO applications ({', '.join(_PROJECT_COLS)}) VALUES ({', '.join('?' * len(_PROJECT_COLS))})"
    f" ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c}=excluded.{c}' for c in _PROJECT_COLS[1:])}"
)


_CHUNK = 500  # ids per IN (...) query


_SAVE_SQL = (
    "INSERT INTO records (entity, id, state, application) VALUES (?,?,?,?)"
    " ON CONFLICT (entity, id) DO UPDATE SET state=excluded.state, application=excluded.application"
)


def _record_row(key: tuple[str, str], record: Record) -> tuple[object, ...]:
    entity, rec_id = key
    app = rec_id if entity == "application" else str(record.get("application", (0, "", "", 0))[2])
    # record_to_wire with the fields in key order already, so pack finds it canonical as it is.
    state = pack_map(record, cells=True)  # type: ignore[arg-type]
    return (entity, rec_id, state, app)


def _projection_row(rec_id: str, record: Record) -> list[object]:
    row: list[object] = [rec_id]
    get = record.get
    for name in PROJECTED:
        cell = get(name)
        v = None if cell is None else cell[2]
        if v is None:
            row.append(0 if name == "paused" else None)
        elif v.__class__ is bytes:  # a personal value a station seals at rest: lists show its mask
            row.append(mask_of(v))
        else:
            row.append(int(v) if v.__class__ is bool else v)
    row.append(max((c[0] for c in record.values()), default=0))
    return row


class RecordStore:
    """The fold, applied to SQLite. ``authority`` maps an origin to its tier's weight."""

    def __init__(self, db: sqlite_utils.Database, authority: Callable[[str], int]) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.authority = authority

    def load(self, entity: str, rec_id: str) -> Record:
        row = self.conn.execute("SELECT state FROM records WHERE entity=? AND id=?", (entity, rec_id)).fetchone()
        if row is None:
            return {}
        raw = unpack(row[0])
        assert isinstance(raw, dict)
        return record_from_wire(raw)

    def values(self, entity: str, rec_id: str) -> dict[str, object]:
        return values(self.load(entity, rec_id))

    def has_change(self, origin: str, epoch: int, seq: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM changes WHERE origin=? AND epoch=? AND seq=?", (origin, epoch, seq)
        ).fetchone()
        return row is not None

    def apply(self, changes: Sequence[Change]) -> Applied:
        """Log and merge ``changes``; changes already held are counted as duplicates and skipped."""
        run = self.run()
        for change in changes:
            run.add(change)
        return run.finish()

    def run(self) -> Run:
        """An :class:`Run`: changes applied one at a time, each touched record written once at the end."""
        return Run(self)

    def _save(self, key: tuple[str, str], record: Record) -> None:
        self.conn.execute(_SAVE_SQL, _record_row(key, record))
        if key[0] == "application":
            self._project_application(key[1], record)

    def _project_application(self, rec_id: str, record: Record) -> None:
        self.conn.execute(_PROJECT_SQL, _projection_row(rec_id, record))

    def _record_conflict(self, c: Conflict) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO conflicts (id, entity, record, field, winner, loser, rule, detected_hlc)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                c.conflict_id,
                c.entity,
                c.id,
                c.field,
                pack(list(c.winner)),
                pack(list(c.loser)),
                c.rule,
                max(c.winner[0], c.loser[0]),
            ),
        )

    def refold(self) -> int:
        """Check every record against the fold of its logged changes and rewrite the ones that differ
        (a row deleted or altered behind our back). Returns how many were rewritten. Call inside a
        transaction; the log is the source of truth, the records and projection are derived."""
        fixed = 0
        current: tuple[str, str] | None = None
        changes: list[Change] = []
        rows = self.conn.execute(
            "SELECT entity, rid, origin, epoch, seq, hlc, fields, base FROM changes ORDER BY entity, rid"
        )
        for entity, rid, origin, epoch, seq, hlc, fields, base in [*rows, (None, None, "", 0, 0, 0, b"", b"")]:
            if (entity, rid) != current:
                if current is not None and changes:
                    fixed += self._check(current, changes)
                current, changes = (entity, rid), []
            if entity is None:
                break
            f, b = unpack(fields), unpack(base)
            assert isinstance(f, dict) and isinstance(b, dict)
            changes.append(Change(origin, epoch, seq, hlc, entity, rid, f, b))
        return fixed

    def _check(self, key: tuple[str, str], changes: list[Change]) -> int:
        record: Record = {}
        for change in changes:
            record, _ = apply_change(record, change, self.authority)
        row = self.conn.execute("SELECT state FROM records WHERE entity=? AND id=?", key).fetchone()
        projected = key[0] != "application" or self._projection_matches(key[1], record)
        if row is not None and bytes(row[0]) == pack(record_to_wire(record)) and projected:
            return 0
        self._save(key, record)
        return 1

    def _projection_matches(self, rec_id: str, record: Record) -> bool:
        row = self.conn.execute(f"SELECT {', '.join(PROJECTED)} FROM applications WHERE id=?", (rec_id,)).fetchone()
        if row is None:
            return False
        vals = values(record)
        want = [(int(v) if isinstance(v, bool) else v) for v in (vals.get(n) for n in PROJECTED)]
        want = [0 if (n == "paused" and v is None) else v for n, v in zip(PROJECTED, want, strict=True)]
        return list(row) == want

    def history(self, application: str) -> list[dict[str, object]]:
        """Every change to an application and its related records, oldest first: the audit trail."""
        rows = self.conn.execute(
            "SELECT origin, epoch, seq, hlc, entity, rid, fields, author FROM changes WHERE application=?"
            " ORDER BY hlc, origin",
            (application,),
        ).fetchall()
        return [
            {
                "origin": r[0],
                "epoch": r[1],
                "seq": r[2],
                "hlc": r[3],
                "entity": r[4],
                "id": r[5],
                "fields": unpack(r[6]),
                "author": r[7],
            }
            for r in rows
        ]

    def records_of(self, application: str) -> Iterable[tuple[str, str, Record]]:
        for entity, rec_id, state in self.conn.execute(
            "SELECT entity, id, state FROM records WHERE application=?", (application,)
        ):
            raw = unpack(state)
            assert isinstance(raw, dict)
            yield entity, rec_id, record_from_wire(raw)


class Run:
    """Changes applied one at a time against one record cache: each change is logged at once (so its
    log rowid is known and a duplicate is skipped), merged in memory, and each touched record is
    written once by :meth:`finish`. Between changes, :meth:`values` shows the merged state so far, as
    a reader of the records would see it had every change been written on its own."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.cache: dict[tuple[str, str], Record] = {}
        self.touched: set[tuple[str, str]] = set()
        self.conflicts: list[Conflict] = []
        self.logged: list[tuple[int, Change, str]] = []
        self.applied = self.duplicates = 0

    def record(self, entity: str, rec_id: str) -> Record:
        key = (entity, rec_id)
        record = self.cache.get(key)
        if record is None:
            record = self.cache[key] = self.store.load(entity, rec_id)
        return record

    def values(self, entity: str, rec_id: str) -> dict[str, object]:
        return values(self.record(entity, rec_id))

    def holds(self, entity: str, rec_id: str) -> bool:
        """Whether this run has touched the record (its stored row is then out of date until finish)."""
        return (entity, rec_id) in self.touched

    def add(self, change: Change) -> tuple[int, Change, str] | None:
        """Log and merge one change; returns (log rowid, change, application), or None for a duplicate."""
        key = (change.entity, change.id)
        record = self.record(*key)
        app = application_of(change, record)
        cur = self.store.conn.execute(
            "INSERT OR IGNORE INTO changes (origin, epoch, seq, hlc, entity, rid, fields, base, application, author)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                change.origin,
                change.epoch,
                change.seq,
                change.hlc,
                change.entity,
                change.id,
                pack_map(dict(change.fields)),
                pack_map(dict(change.base)),
                app,
                change.author,
            ),
        )
        if cur.rowcount == 0:
            self.duplicates += 1
            return None
        self.applied += 1
        record, found = apply_change(record, change, self.store.authority)
        self.cache[key] = record
        self.touched.add(key)
        self.conflicts.extend(found)
        entry = (int(cur.lastrowid or 0), change, app)
        self.logged.append(entry)
        return entry

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Load the records these changes will touch in a few queries instead of one each."""
        wanted = {k for k in keys if k not in self.cache}
        by_entity: dict[str, list[str]] = {}
        for entity, rec_id in wanted:
            by_entity.setdefault(entity, []).append(rec_id)
        for entity, ids in by_entity.items():
            for i in range(0, len(ids), _CHUNK):
                part = ids[i : i + _CHUNK]
                for rec_id, state in self.store.conn.execute(
                    f"SELECT id, state FROM records WHERE entity=? AND id IN ({','.join('?' * len(part))})",
                    [entity, *part],
                ):
                    raw = unpack(state)
                    assert isinstance(raw, dict)
                    self.cache[(entity, rec_id)] = record_from_wire(raw)
        for key in wanted:
            self.cache.setdefault(key, {})

    def finish(self) -> Applied:
        """Write every touched record (and application projection) once; record the conflicts found."""
        conn = self.store.conn
        conn.executemany(_SAVE_SQL, [_record_row(key, self.cache[key]) for key in self.touched])
        conn.executemany(
            _PROJECT_SQL, [_projection_row(key[1], self.cache[key]) for key in self.touched if key[0] == "application"]
        )
        for c in self.conflicts:
            self.store._record_conflict(c)
        return Applied(
            self.applied, self.duplicates, tuple(self.conflicts), frozenset(self.touched), tuple(self.logged)
        )
