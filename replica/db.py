"""Opening a replica's SQLite database the one way Sanji allows.

WAL with ``synchronous=FULL``: a transaction whose COMMIT has returned survives a power cut, which is
what "an application counts as accepted only after its commit returns" rests on. Transactions are
explicit (``BEGIN IMMEDIATE``) so the write lock is taken up front and two processes on one folder
queue instead of failing halfway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils


def connect(path: Path | str) -> sqlite_utils.Database:
    # isolation_level=None: no implicit transactions; we open and close every one ourselves.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return sqlite_utils.Database(conn)


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """One atomic write. sqlite-utils' own helpers nest inside it as savepoints (``db.atomic``)."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def quick_check(db: sqlite_utils.Database) -> str:
    """``ok`` or SQLite's description of the damage. Run at start-up after an unclean stop."""
    return _check(db, "quick_check")


def integrity_check(db: sqlite_utils.Database) -> str:
    return _check(db, "integrity_check")


def _check(db: sqlite_utils.Database, pragma: str) -> str:
    # Severe damage makes the pragma itself fail; that is a finding to report, not a crash.
    try:
        rows = db.conn.execute(f"PRAGMA {pragma}").fetchall()
    except sqlite3.DatabaseError as exc:
        return f"database error: {exc}"
    return "; ".join(str(r[0]) for r in rows)


def backup_to(db: sqlite_utils.Database, target: Path) -> int:
    """A consistent copy made with SQLite's online backup API while others keep writing."""
    dest = sqlite3.connect(str(target))
    try:
        db.conn.backup(dest)
    finally:
        dest.close()
    return target.stat().st_size
