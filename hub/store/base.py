"""The hub store's connection and lifecycle: opening, closing, checking, transactions, settings.

Every other part of :class:`hub.store.HubStore` (one mixin per module of this package) runs its SQL
over ``self.conn``, the one connection opened here. The transaction forms live here too: the plain
``transaction()`` of the CLI and library, and the savepoints and group commit of the serving hub's
committer (``hub/committer.py``), so that no module above the store spells BEGIN, SAVEPOINT or COMMIT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Self

import sqlite_utils

from hub.schema import blob_migrations, dashboard_migrations, migrations
from hub.store.errors import StoreError, translated
from protocol.codec import pack, unpack
from replica import folders, list_schema, merkle_store, records
from replica.db import backup_to, connect, quick_check, transaction
from replica.merkle_store import LeafStore

DB_NAME = "hub.db"


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """One piece of a group: all of it or none of it, inside the group's transaction."""
    conn.execute("SAVEPOINT piece")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO piece")
        conn.execute("RELEASE piece")
        raise
    conn.execute("RELEASE piece")


class GroupTransaction:
    """The statements of one group commit over a connection (see ``hub/committer.py``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def begin(self) -> None:
        with translated():
            self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        with translated():
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        """Undo the open group, if one is open (a failed BEGIN leaves none)."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def savepoint(self) -> AbstractContextManager[None]:
        return savepoint(self.conn)


class StoreBase:
    """The connection every part of the store shares, and what is done with the store as a whole."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path) -> Self:
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / DB_NAME).exists():
            raise FileExistsError(f"{folder} 里已经有区局了：请换一个新的空文件夹 (already holds a Sanji hub)")
        return cls._open(folder / DB_NAME)

    @classmethod
    def open(cls, folder: Path) -> Self:
        folders.need_hub(folder)  # names what the folder is instead, and what to type
        return cls._open(folder / DB_NAME)

    @classmethod
    def _open(cls, path: Path) -> Self:
        db = connect(path)
        sets = (records.migrations, list_schema.migrations, merkle_store.migrations, migrations)
        for migration_set in (*sets, blob_migrations, dashboard_migrations):
            migration_set.apply(db)
        return cls(db)

    def close(self) -> None:
        self.conn.close()

    def quick_check(self) -> str:
        return quick_check(self.db)

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers a query (the health check)."""
        with translated():
            self.conn.execute("SELECT 1").fetchone()

    def backup_into(self, out: Path) -> int:
        """A consistent copy of the database written to ``out`` through this connection (SQLite's
        online backup API; ``hub/store/sqlite_files.py`` copies through a connection of its own)."""
        with translated():
            return backup_to(self.db, out)

    def data_version(self) -> int:
        """A number that changes when another connection (another process) has committed since the
        last call; equal numbers mean nothing changed underneath us. SQLite's ``data_version``."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def set_cache_kib(self, kib: int) -> None:
        """How much memory the connection may keep as page cache (the serving hub raises it)."""
        self.conn.execute(f"PRAGMA cache_size=-{int(kib)}")

    # -- transactions ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all. A database failure leaves as
        :class:`StoreError`; any other exception passes through unchanged."""
        with translated(), transaction(self.db):
            yield

    def group_transaction(self) -> GroupTransaction:
        """The begin / savepoint / commit steps of the serving hub's group commit."""
        return GroupTransaction(self.conn)

    # -- what replica/ keeps in the same database -------------------------------------------------

    def record_store(self, authority: Callable[[str], int]) -> records.RecordStore:
        """The merged records and change log (``replica/records.py``) in this database."""
        return records.RecordStore(self.db, authority)

    def leaf_store(self, scope: str) -> LeafStore:
        """A scope's stored Merkle leaves (``replica/merkle_store.py``) in this database."""
        return LeafStore(self.conn, scope)

    # -- settings ---------------------------------------------------------------------------------

    def get_meta(self, key: str, default: object = None) -> object:
        row = self.conn.execute("SELECT value FROM hub_meta WHERE key=?", (key,)).fetchone()
        return default if row is None else unpack(row[0])

    def set_meta(self, key: str, value: object) -> None:
        self.conn.execute(
            "INSERT INTO hub_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, pack(value)),
        )


__all__ = ["DB_NAME", "GroupTransaction", "StoreBase", "StoreError", "savepoint"]
