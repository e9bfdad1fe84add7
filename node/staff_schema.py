"""The station's staff accounts and its data key's check value, as tables of the station's store.

Migration set ``sanji.node.staff``, applied by ``node/store.py`` whenever the store opens, so a folder
made before staff accounts existed gains the (empty) tables at its next open and nothing else changes.

``staff``: one row per person who may sign in at this station's window, made locally (the first
administrator at ``node init``, or by a local administrator) or, once integrated, from the hub's feed.
A row never holds a password, only its scrypt hash in the format hub and station share
(``sync/staff_password.py``), and the person's own wrapped copy of the station's data key
(``node/data_key.py``), which is NULL when the account may not unlock: disabled, or not granted yet.
Failed sign-ins are kept as the times of the last few, so the lock-out follows the dashboard's sliding
window exactly (``node/staff_lockout.py``). An account the hub made also holds its grant key and, until
the person's first sign-in, the data key sealed to it by a colleague's session (``node/staff_grants.py``).

``station_key``: one row, the check value of the station's data key (``data_key.key_check``), so a
key that unwraps but is not this station's is refused, and the station knows whether it has a key yet.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlite_utils
from sqlite_utils import Migrations

from protocol.codec import unpack
from protocol.errors import SanjiError
from protocol.limits import Limits

# The rules of an account are shared with the hub (sync/staff_rules.py); named here for node/'s modules.
from sync.staff_rules import ADMIN as ADMIN
from sync.staff_rules import ROLES as ROLES
from sync.staff_rules import STAFF as STAFF
from sync.staff_rules import USER_NAME as USER_NAME

LOCAL = "local"
HUB = "hub"

migrations = Migrations("sanji.node.staff")

_TIMES_LIMITS = Limits(max_bytes=256, max_str=1, max_bin=1, max_array=32, max_map=1, max_depth=2)


@migrations()
def m001_staff(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE staff (
            user TEXT PRIMARY KEY,             -- the sign-in name, e.g. zhangsan
            name TEXT NOT NULL,                -- the display name, e.g. 张三
            role TEXT NOT NULL,                -- 'admin' or 'staff'
            source TEXT NOT NULL,              -- 'local' (made here) or 'hub' (from the feed)
            password_hash TEXT NOT NULL,       -- scrypt$N$r$p$salt$digest (sync/staff_password.py)
            enabled INTEGER NOT NULL DEFAULT 1,
            failures INTEGER NOT NULL DEFAULT 0,     -- failed sign-ins still inside the window
            failed_at BLOB,                          -- their times (ms), packed, the latest few only
            locked_until_ms INTEGER NOT NULL DEFAULT 0,
            wrapped_key BLOB,                  -- this person's copy of the data key; NULL: cannot unlock
            created_ms INTEGER NOT NULL,
            changed_ms INTEGER NOT NULL) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE station_key (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            key_check BLOB NOT NULL,           -- HMAC of a fixed label under the data key
            created_ms INTEGER NOT NULL)"""
    )


@migrations()
def m002_grants(db: sqlite_utils.Database) -> None:
    # Hub-made accounts (node/staff_grants.py): the public grant key the hub derived from the password,
    # and the data key sealed to it by a colleague's session until the person's first sign-in.
    db.execute("ALTER TABLE staff ADD COLUMN grant_key TEXT")  # scrypt$N$r$p$salt$public (sync/staff_grant.py)
    db.execute("ALTER TABLE staff ADD COLUMN grant BLOB")  # HPKE-sealed data key, pending; NULL once redeemed


@migrations()
def m003_hub_version(db: sqlite_utils.Database) -> None:
    # The version of the hub's word on a hub-made account (protocol/feed.py StaffEntry): an entry with a
    # lower one (an old page imported again from a stick) never puts an older hash or state back.
    db.execute("ALTER TABLE staff ADD COLUMN hub_version INTEGER NOT NULL DEFAULT 0")


@migrations()
def m004_password_seen(db: sqlite_utils.Database) -> None:
    # A hub-made account whose person changed the password here (node/staff_password.py): the hub's
    # version of the account the station held then. Until the feed carries the new hash back, an entry
    # whose password_version is not above it keeps the station's hash (sync/staff_change.py). NULL: the
    # hash is the hub's word, or the account is local.
    db.execute("ALTER TABLE staff ADD COLUMN password_seen INTEGER")


@dataclass(frozen=True)
class Account:
    """One row of ``staff``, as read."""

    user: str
    name: str
    role: str
    source: str
    password_hash: str
    enabled: bool
    failed_at: tuple[int, ...]
    locked_until_ms: int
    wrapped_key: bytes | None
    grant_key: str | None = None
    grant: bytes | None = None
    hub_version: int = 0
    password_seen: int | None = None


_COLUMNS = (
    "user, name, role, source, password_hash, enabled, failed_at, locked_until_ms, wrapped_key, grant_key, grant,"
    " hub_version, password_seen"
)


def _times(blob: object) -> tuple[int, ...]:
    # Only this module writes the column; a damaged value forgets old failures rather than breaking
    # every sign-in of the account.
    if not isinstance(blob, bytes):
        return ()
    try:
        value = unpack(blob, _TIMES_LIMITS)
    except SanjiError:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return ()
    return tuple(int(t) for t in value)


def account(conn: sqlite3.Connection, user: str) -> Account | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM staff WHERE user=?", (user,)).fetchone()
    if row is None:
        return None
    wrapped = row[8]
    return Account(
        user=str(row[0]),
        name=str(row[1]),
        role=str(row[2]),
        source=str(row[3]),
        password_hash=str(row[4]),
        enabled=bool(row[5]),
        failed_at=_times(row[6]),
        locked_until_ms=int(row[7]),
        wrapped_key=bytes(wrapped) if wrapped is not None else None,
        grant_key=str(row[9]) if row[9] is not None else None,
        grant=bytes(row[10]) if row[10] is not None else None,
        hub_version=int(row[11]),
        password_seen=int(row[12]) if row[12] is not None else None,
    )


def accounts(conn: sqlite3.Connection) -> list[Account]:
    users = [str(r[0]) for r in conn.execute("SELECT user FROM staff ORDER BY user")]
    return [a for a in (account(conn, u) for u in users) if a is not None]


def key_check(conn: sqlite3.Connection) -> bytes | None:
    """The check value of the station's data key, or None while the station has none."""
    row = conn.execute("SELECT key_check FROM station_key WHERE id=1").fetchone()
    return None if row is None else bytes(row[0])


def record_key_check(conn: sqlite3.Connection, check: bytes, now_ms: int) -> None:
    conn.execute("INSERT INTO station_key (id, key_check, created_ms) VALUES (1, ?, ?)", (check, now_ms))


def enabled_admins(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM staff WHERE role=? AND enabled=1", (ADMIN,)).fetchone()[0])
