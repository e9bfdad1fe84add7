"""The SQLite store's file-level operations: what a hub on SQLite does to ``hub.db`` as a file.

The nightly job's integrity check and backup each run over a connection of their own (beside the
re-fold's reading, with SQLite letting go of Python's lock while it reads), ``hub backup`` copies the
file through the online backup API, and ``hub restore`` reads a backup's identity before it puts it in
place. On PostgreSQL none of these exist as such: the cluster checks its own pages and is backed up
and restored by its own tools (``hub/store/pg_store.need_sqlite`` names them).

Every driver error leaves here as :class:`~hub.store.errors.StoreError`, so nothing above the store
names ``sqlite3``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hub.store.errors import StoreError, translated
from protocol.codec import unpack
from replica.db import backup_to, connect, integrity_check

CHECK_CACHE_MAX_KIB = 512 * 1024  # the integrity check's page cache at most


def integrity_check_apart(path: Path) -> str:
    """``PRAGMA integrity_check`` of the file at ``path`` over a connection of its own: ``"ok"`` or
    what it found."""
    with translated():
        db = connect(path)
        try:
            # The check looks up every index entry in its table: with SQLite's default 2 MB page
            # cache it reads the same pages again and again (62 s for a 3.8 GB hub.db at a million
            # applications, against 44 s with an eighth of the file cached). The cache is this
            # connection's only; it is gone when the check ends.
            cache_kib = min(CHECK_CACHE_MAX_KIB, max(2_000, path.stat().st_size // 1024 // 8))
            db.conn.execute(f"PRAGMA cache_size=-{cache_kib}")
            return integrity_check(db)
        finally:
            db.conn.close()


def backup_apart(path: Path, out: Path) -> int:
    """A consistent copy of the file at ``path`` written to ``out`` through a connection of its own
    (SQLite's online backup API); its size in bytes."""
    with translated():
        db = connect(path)
        try:
            return backup_to(db, out)
        finally:
            db.conn.close()


def hub_id_of_copy(source: Path) -> object | None:
    """The ``hub_id`` a backup file names (None when it names none), read without changing the file;
    :class:`StoreError` when it is not a SQLite database at all."""
    try:
        probe = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            row = probe.execute("SELECT value FROM hub_meta WHERE key='hub_id'").fetchone()
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(str(exc)) from exc
    return None if row is None else unpack(row[0])


__all__ = ["CHECK_CACHE_MAX_KIB", "backup_apart", "hub_id_of_copy", "integrity_check_apart"]
