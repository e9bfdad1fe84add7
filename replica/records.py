"""Merged records, the change log and the application projection, shared by node and hub.

``records`` holds each record's merged cells (the fold's state, see ``sync/fold.py``) and its digest,
the Merkle leaf anti-entropy compares. ``changes`` is the log of every change this replica holds,
its own and others', keyed by ``(origin, epoch, seq)`` so a change is stored once however often it
arrives; an application's history is read from it. ``applications`` is a plain projection of the
merged application records for listing and searching. ``conflicts`` keeps concurrent edits the fold
settled, for an operator to confirm or override.

Every method that writes expects to run inside ``replica.db.transaction``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlite_utils
from sqlite_utils import Migrations

from protocol.codec import pack, unpack
from sync.change import Change
from sync.fold import Cell, Conflict, Record, apply_change, record_digest, record_from_wire, record_to_wire, values

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


PROJECTED = (
    "number", "station", "item", "status", "applicant_name", "applicant_id", "applicant_phone",
    "address", "accepted_at", "due_date", "paused", "catalogue_version", "theme", "kind", "decision",
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


class RecordStore:
    """The fold, applied to SQLite. ``authority`` maps an origin to its tier's weight."""

    def __init__(self, db: sqlite_utils.Database, authority: Callable[[str], int]) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.authority = authority

    def load(self, entity: str, rec_id: str) -> Record:
        row = self.conn.execute(
            "SELECT state FROM records WHERE entity=? AND id=?", (entity, rec_id)
        ).fetchone()
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
        applied = dups = 0
        conflicts: list[Conflict] = []
        touched: set[tuple[str, str]] = set()
        logged: list[tuple[int, Change, str]] = []
        cache: dict[tuple[str, str], Record] = {}
        for change in changes:
            key = (change.entity, change.id)
            record = cache[key] if key in cache else self.load(*key)
            app = application_of(change, record)
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO changes (origin, epoch, seq, hlc, entity, rid, fields, base, application)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (change.origin, change.epoch, change.seq, change.hlc, change.entity, change.id,
                 pack(dict(change.fields)), pack(dict(change.base)), app),
            )
            if cur.rowcount == 0:
                dups += 1
                continue
            applied += 1
            record, found = apply_change(record, change, self.authority)
            cache[key] = record
            touched.add(key)
            conflicts.extend(found)
            logged.append((int(cur.lastrowid or 0), change, app))
        for key in touched:
            self._save(key, cache[key])
        for c in conflicts:
            self._record_conflict(c)
        return Applied(applied, dups, tuple(conflicts), frozenset(touched), tuple(logged))

    def _save(self, key: tuple[str, str], record: Record) -> None:
        entity, rec_id = key
        app = rec_id if entity == "application" else str(record.get("application", (0, "", "", 0))[2])
        self.conn.execute(
            "INSERT INTO records (entity, id, state, digest, application) VALUES (?,?,?,?,?)"
            " ON CONFLICT (entity, id) DO UPDATE SET state=excluded.state, digest=excluded.digest,"
            " application=excluded.application",
            (entity, rec_id, pack(record_to_wire(record)), record_digest(entity, rec_id, record), app),
        )
        if entity == "application":
            self._project_application(rec_id, record)

    def _project_application(self, rec_id: str, record: Record) -> None:
        vals = values(record)
        row: list[object] = [rec_id]
        for name in PROJECTED:
            v = vals.get(name)
            row.append(int(v) if isinstance(v, bool) else v)
        row.append(max((c[0] for c in record.values()), default=0))
        cols = ("id", *PROJECTED, "updated_hlc")
        updates = ", ".join(f"{c}=excluded.{c}" for c in cols[1:])
        self.conn.execute(
            f"INSERT INTO applications ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            f" ON CONFLICT (id) DO UPDATE SET {updates}",
            [0 if (c == "paused" and v is None) else v for c, v in zip(cols, row, strict=True)],
        )

    def _record_conflict(self, c: Conflict) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO conflicts (id, entity, record, field, winner, loser, rule, detected_hlc)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (c.conflict_id, c.entity, c.id, c.field, pack(list(c.winner)), pack(list(c.loser)), c.rule,
             max(c.winner[0], c.loser[0])),
        )

    def history(self, application: str) -> list[dict[str, object]]:
        """Every change to an application and its related records, oldest first: the audit trail."""
        rows = self.conn.execute(
            "SELECT origin, epoch, seq, hlc, entity, rid, fields FROM changes WHERE application=?"
            " ORDER BY hlc, origin",
            (application,),
        ).fetchall()
        return [
            {"origin": r[0], "epoch": r[1], "seq": r[2], "hlc": r[3], "entity": r[4], "id": r[5],
             "fields": unpack(r[6])}
            for r in rows
        ]

    def records_of(self, application: str) -> Iterable[tuple[str, str, Record]]:
        for entity, rec_id, state in self.conn.execute(
            "SELECT entity, id, state FROM records WHERE application=?", (application,)
        ):
            raw = unpack(state)
            assert isinstance(raw, dict)
            yield entity, rec_id, record_from_wire(raw)


def cell_to_json(cell: Cell) -> dict[str, object]:
    return {"hlc": cell[0], "origin": cell[1], "value": cell[2], "base": cell[3]}
