"""The hub's SQLite store.

The ingest, feed and CLI code talk to the database only through :class:`HubStore`, so that a second
backend (PostgreSQL, for a city-sized deployment) can be dropped in and run the same contract tests
(``tests/hub/test_store_contract.py``). The contract of each method is in its docstring; methods that
write must be called inside :meth:`HubStore.transaction` unless they say otherwise.

Tables (besides the shared replica tables in ``replica/records.py``):
- ``hub_meta``: hub id, name, own HLC and seq (the hub is an origin too);
- ``stations``: the station tree, keys, revocation, and what each station last told us;
- ``tokens``: one-time enrolment tokens, stored only as SHA-256;
- ``cursors`` / ``batches``: per (origin, epoch) the next seq and chain hash, and every batch taken;
- ``quarantine``: authentic changes (or whole batches) held back with a reason;
- ``rejected``: requests and files refused as inauthentic or malformed: one row per source, hour
  and reason code, with a count and the latest reason;
- ``alerts``: security events (forks; revoked stations still sending, counted per station and hour);
- ``feed``: which logged change goes to which station's downstream feed;
- ``releases``: signed catalogue releases.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from hub.refusal_log import RefusalLog
from hub.schema import blob_migrations, dashboard_migrations, migrations
from protocol.codec import pack, unpack
from replica import folders, list_schema, merkle_store, records
from replica.db import connect, quick_check, transaction
from sync.session import Cursor

DB_NAME = "hub.db"


@dataclass(frozen=True)
class Station:
    code: str
    name: str
    tier: str
    parent: str
    sign_pub: bytes | None
    seal_pub: bytes | None
    revoked: bool
    last_seen_ms: int | None
    backlog: int
    catalogue_version: int
    feed_ack: int
    last_error: str
    last_via: str = ""  # 'network', 'usb' (files carried by hand), or '' before it first reached us


STATION_COLS = (
    "code, name, tier, parent, sign_pub, seal_pub, revoked, last_seen_ms, backlog, catalogue_version,"
    " feed_ack, last_error, last_via"
)


def _station(row: tuple[object, ...]) -> Station:
    code, name, tier, parent, sp, xp, rev, seen, backlog, cv, ack, err, via = row
    return Station(
        str(code),
        str(name),
        str(tier),
        str(parent),
        sp if isinstance(sp, bytes) else None,
        xp if isinstance(xp, bytes) else None,
        bool(rev),
        seen if isinstance(seen, int) else None,
        int(str(backlog)),
        int(str(cv)),
        int(str(ack)),
        str(err),
        str(via),
    )


class HubStore(RefusalLog):
    """The hub's persistent state behind one narrow interface (SQLite implementation)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path) -> HubStore:
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / DB_NAME).exists():
            raise FileExistsError(f"{folder} 里已经有区局了：请换一个新的空文件夹 (already holds a Sanji hub)")
        return cls._open(folder / DB_NAME)

    @classmethod
    def open(cls, folder: Path) -> HubStore:
        folders.need_hub(folder)  # names what the folder is instead, and what to type
        return cls._open(folder / DB_NAME)

    @classmethod
    def _open(cls, path: Path) -> HubStore:
        db = connect(path)
        sets = (records.migrations, list_schema.migrations, merkle_store.migrations, migrations)
        for migration_set in (*sets, blob_migrations, dashboard_migrations):
            migration_set.apply(db)
        return cls(db)

    def close(self) -> None:
        self.conn.close()

    def quick_check(self) -> str:
        return quick_check(self.db)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        with transaction(self.db):
            yield

    # -- settings ---------------------------------------------------------------------------------

    def get_meta(self, key: str, default: object = None) -> object:
        row = self.conn.execute("SELECT value FROM hub_meta WHERE key=?", (key,)).fetchone()
        return default if row is None else unpack(row[0])

    def set_meta(self, key: str, value: object) -> None:
        self.conn.execute(
            "INSERT INTO hub_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, pack(value)),
        )

    # -- stations ---------------------------------------------------------------------------------

    def add_station(self, code: str, name: str, tier: str, parent: str, now_ms: int) -> None:
        """Register a station (idempotent on the code: a re-enrolment keeps the record)."""
        self.conn.execute(
            "INSERT INTO stations (code, name, tier, parent, registered_ms) VALUES (?,?,?,?,?)"
            " ON CONFLICT(code) DO UPDATE SET name=excluded.name, tier=excluded.tier, parent=excluded.parent",
            (code, name, tier, parent, now_ms),
        )

    def station(self, code: str) -> Station | None:
        row = self.conn.execute(f"SELECT {STATION_COLS} FROM stations WHERE code=?", (code,)).fetchone()
        return None if row is None else _station(row)

    def stations(self) -> list[Station]:
        rows = self.conn.execute(f"SELECT {STATION_COLS} FROM stations ORDER BY code").fetchall()
        return [_station(r) for r in rows]

    def set_station_keys(self, code: str, sign_pub: bytes, seal_pub: bytes, key_id: str, now_ms: int) -> None:
        """Pin a station's keys and lift any revocation (a re-enrolment issues new keys)."""
        self.conn.execute(
            "UPDATE stations SET sign_pub=?, seal_pub=?, sign_key_id=?, revoked=0, enrolled_ms=? WHERE code=?",
            (sign_pub, seal_pub, key_id, now_ms, code),
        )

    def revoke(self, code: str) -> bool:
        cur = self.conn.execute("UPDATE stations SET revoked=1 WHERE code=?", (code,))
        return cur.rowcount > 0

    def seen(
        self,
        code: str,
        now_ms: int,
        *,
        backlog: int | None = None,
        catalogue_version: int | None = None,
        feed_ack: int | None = None,
        error: str | None = None,
        skew_ms: int | None = None,
        via: str | None = None,
    ) -> None:
        """Record what a station told us; ``None`` leaves a column as it was. ``via``: 'network' or 'usb'."""
        self.conn.execute(
            "UPDATE stations SET last_seen_ms=?, backlog=COALESCE(?, backlog),"
            " catalogue_version=COALESCE(?, catalogue_version), feed_ack=MAX(feed_ack, COALESCE(?, feed_ack)),"
            " last_error=COALESCE(?, last_error), clock_skew_ms=COALESCE(?, clock_skew_ms),"
            " last_via=COALESCE(?, last_via) WHERE code=?",
            (now_ms, backlog, catalogue_version, feed_ack, error, skew_ms, via, code),
        )

    def carried_status(self, code: str, now_ms: int, at_ms: int) -> bool:
        """Whether a stick's status written at the station's ``at_ms`` is newer than any carried before."""
        sql = "UPDATE stations SET status_at_ms=? WHERE code=? AND status_at_ms<?"
        return self.conn.execute(sql, (at_ms, code, at_ms)).rowcount == 1

    def note_horizon(self, station: str, epoch: int, seq: int, feed: int) -> None:
        """A signed pull said: with its own changes written up to ``seq`` (in ``epoch``), the station had
        applied its feed up to ``feed``. Rows every change of which has arrived are dropped, but the
        newest of them, which the changes still on their way need."""
        self.conn.execute(
            "INSERT INTO horizons (station, epoch, seq, feed) VALUES (?,?,?,?)"
            " ON CONFLICT (station, epoch, seq) DO UPDATE SET feed=MAX(feed, excluded.feed)",
            (station, epoch, seq, feed),
        )
        arrived = self.cursor(station, epoch).next_seq - 1
        self.conn.execute(
            "DELETE FROM horizons WHERE station=? AND epoch=? AND seq < (SELECT MAX(seq) FROM horizons"
            " WHERE station=? AND epoch=? AND seq <= ?)",
            (station, epoch, station, epoch, arrived),
        )

    def horizon(self, station: str, epoch: int, seq: int) -> int:
        """How far its feed the station had applied before it wrote change ``seq`` (0: not known)."""
        row = self.conn.execute(
            "SELECT MAX(feed) FROM horizons WHERE station=? AND epoch=? AND seq<?", (station, epoch, seq)
        ).fetchone()
        return int(row[0] or 0)

    def delivered(self, station: str, change_rowid: int) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM feed WHERE station=? AND change=?", (station, change_rowid)).fetchone()
            is not None
        )

    def tiers(self) -> dict[str, str]:
        return {str(c): str(t) for c, t in self.conn.execute("SELECT code, tier FROM stations")}

    def children(self, code: str) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT code FROM stations WHERE parent=?", (code,))]

    # -- tokens -----------------------------------------------------------------------------------

    def add_token(self, token_hash: bytes, station: str, tier: str, expires_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO tokens (hash, station, tier, expires_ms) VALUES (?,?,?,?)",
            (token_hash, station, tier, expires_ms),
        )

    def token(self, token_hash: bytes) -> tuple[str, str, int, int | None] | None:
        """(station, tier, expires_ms, used_ms) for a token hash, or None."""
        row = self.conn.execute(
            "SELECT station, tier, expires_ms, used_ms FROM tokens WHERE hash=?", (token_hash,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), int(row[2]), row[3])

    def tokens_for(self, station: str) -> list[tuple[bytes, int, int | None]]:
        rows = self.conn.execute("SELECT hash, expires_ms, used_ms FROM tokens WHERE station=?", (station,)).fetchall()
        return [(bytes(r[0]), int(r[1]), r[2]) for r in rows]

    def token_hashes(self) -> list[bytes]:
        """Every token's stored hash (the online enrolment finds a token by an id derived from it)."""
        return [bytes(r[0]) for r in self.conn.execute("SELECT hash FROM tokens")]

    def use_token(self, token_hash: bytes, now_ms: int) -> bool:
        """Mark a token used. False if it was already used: tokens work once."""
        cur = self.conn.execute("UPDATE tokens SET used_ms=? WHERE hash=? AND used_ms IS NULL", (now_ms, token_hash))
        return cur.rowcount == 1

    # -- batches and cursors ------------------------------------------------------------------------

    def cursor(self, origin: str, epoch: int) -> Cursor:
        row = self.conn.execute(
            "SELECT next_seq, last_hash FROM cursors WHERE origin=? AND epoch=?", (origin, epoch)
        ).fetchone()
        return Cursor() if row is None else Cursor(int(row[0]), bytes(row[1]))

    def set_cursor(self, origin: str, epoch: int, cursor: Cursor) -> None:
        self.conn.execute(
            "INSERT INTO cursors (origin, epoch, next_seq, last_hash) VALUES (?,?,?,?)"
            " ON CONFLICT(origin, epoch) DO UPDATE SET next_seq=excluded.next_seq, last_hash=excluded.last_hash",
            (origin, epoch, cursor.next_seq, cursor.last_hash),
        )

    def applied_ranges(self, origin: str, epoch: int, first_seq: int, last_seq: int) -> dict[tuple[int, int], bytes]:
        """Batches taken from this origin and epoch whose range overlaps [first_seq, last_seq]."""
        rows = self.conn.execute(
            "SELECT first_seq, last_seq, hash FROM batches WHERE origin=? AND epoch=? AND first_seq<=? AND last_seq>=?",
            (origin, epoch, last_seq, first_seq),
        ).fetchall()
        return {(int(a), int(b)): bytes(h) for a, b, h in rows}

    def batch_receipt(self, batch_hash: bytes) -> tuple[str, bytes] | None:
        row = self.conn.execute("SELECT result, receipt FROM batches WHERE hash=?", (batch_hash,)).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def record_batch(
        self,
        batch_hash: bytes,
        origin: str,
        epoch: int,
        first_seq: int,
        last_seq: int,
        *,
        now_ms: int,
        result: str,
        applied: int,
        quarantined: int,
        receipt: bytes,
        source: str,
    ) -> None:
        self.conn.execute(
            "INSERT INTO batches (hash, origin, epoch, first_seq, last_seq, received_ms, result, applied,"
            " quarantined, receipt, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (batch_hash, origin, epoch, first_seq, last_seq, now_ms, result, applied, quarantined, receipt, source),
        )

    # -- quarantine (the refusal log and alerts: hub/refusal_log.py) ------------------------------------

    def quarantine(
        self,
        origin: str,
        epoch: int,
        seq: int,
        batch_hash: bytes,
        raw: bytes,
        reason: str,
        now_ms: int,
        *,
        whole_batch: bool = False,
        code: str = "",
        sender: str = "",
    ) -> None:
        """Hold an authentic change (or batch) for an operator. ``sender`` is the station that sent it,
        which differs from ``origin`` only for a change re-sent on another's behalf."""
        self.conn.execute(
            "INSERT INTO quarantine (origin, epoch, seq, batch, raw, whole_batch, reason, created_ms, code, sender)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (origin, epoch, seq, batch_hash, raw, int(whole_batch), reason, now_ms, code, sender or origin),
        )

    def quarantined(self, state: str = "open") -> list[dict[str, object]]:
        rows = self.conn.execute(
            "SELECT id, origin, epoch, seq, reason, created_ms, whole_batch, code, sender FROM quarantine"
            " WHERE state=? ORDER BY id",
            (state,),
        ).fetchall()
        keys = ("id", "origin", "epoch", "seq", "reason", "created_ms", "whole_batch", "code", "sender")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -- feeds ------------------------------------------------------------------------------------

    def add_to_feed(self, station: str, change_rowid: int) -> None:
        self.conn.execute("INSERT OR IGNORE INTO feed (station, change) VALUES (?, ?)", (station, change_rowid))

    def feed_page(self, station: str, after: int, limit: int) -> list[tuple[int, list[object]]]:
        """Up to ``limit`` (rowid, wire change) for ``station`` after ``after``, oldest first."""
        rows = self.conn.execute(
            "SELECT c.rowid, c.origin, c.epoch, c.seq, c.hlc, c.entity, c.rid, c.fields, c.base"
            " FROM feed f JOIN changes c ON c.rowid = f.change WHERE f.station=? AND f.change>?"
            " ORDER BY f.change LIMIT ?",
            (station, after, limit),
        ).fetchall()
        return [(int(r[0]), [r[1], r[2], r[3], r[4], r[5], r[6], unpack(r[7]), unpack(r[8])]) for r in rows]

    # -- catalogue releases -------------------------------------------------------------------------

    def add_release(self, version: int, frame: bytes, issued_at: str, expires_at: str, now_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO releases (version, frame, issued_at, expires_at, published_ms) VALUES (?,?,?,?,?)",
            (version, frame, issued_at, expires_at, now_ms),
        )

    def release(self, version: int) -> bytes | None:
        row = self.conn.execute("SELECT frame FROM releases WHERE version=?", (version,)).fetchone()
        return None if row is None else bytes(row[0])

    def release_frames(self) -> list[tuple[int, bytes]]:
        """Every release (version, signed frame), oldest first."""
        rows = self.conn.execute("SELECT version, frame FROM releases ORDER BY version").fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def replace_release_frame(self, version: int, frame: bytes) -> None:
        """The same release signed again (after the hub's online key was rotated). Call in a transaction."""
        self.conn.execute("UPDATE releases SET frame=? WHERE version=?", (frame, version))

    def latest_release(self) -> tuple[int, bytes] | None:
        row = self.conn.execute("SELECT version, frame FROM releases ORDER BY version DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    # -- operators --------------------------------------------------------------------------------

    def add_operator(self, user: str, password_hash: str, now_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO operators (user, hash, created_ms) VALUES (?,?,?)"
            " ON CONFLICT(user) DO UPDATE SET hash=excluded.hash",
            (user, password_hash, now_ms),
        )

    def operator_hash(self, user: str) -> str | None:
        row = self.conn.execute("SELECT hash FROM operators WHERE user=?", (user,)).fetchone()
        return None if row is None else str(row[0])

    # -- figures ----------------------------------------------------------------------------------

    def count(self, table: str, where: str = "", args: tuple[object, ...] = ()) -> int:
        if table not in {"applications", "conflicts", "quarantine", "rejected", "alerts", "batches", "changes"}:
            raise ValueError(table)
        # Refusals and alerts are counted rows: the figure is how many there were, not how many rows.
        what = "COALESCE(SUM(count), 0)" if table in {"rejected", "alerts"} else "COUNT(*)"
        sql = f"SELECT {what} FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self.conn.execute(sql, args).fetchone()[0])
