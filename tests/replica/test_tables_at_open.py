"""Every migration set of a store is applied when the store opens, not on first use.

The blob and feed-quarantine tables used to be created by the first call that needed them, behind a
lock, with a race between two processes opening a new folder. Now a new folder has them from its
creation, and a folder made before gains them at its next open.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from hub.store import HubStore
from node.store import create_store, open_store

NODE_LATE_TABLES = {
    "sanji.node.blobs": ("blobs", "blob_refs", "purged"),
    "sanji.node.feed_quarantine": ("feed_quarantine",),
}
HUB_LATE_TABLES = {"sanji.hub.blobs": ("blobs", "blob_uploads")}


def _forget(db: sqlite_utils.Database, sets: dict[str, tuple[str, ...]]) -> None:
    """Make the folder look like one created before the sets were applied at open."""
    for name, tables in sets.items():
        for table in tables:
            db.execute(f"DROP TABLE {table}")
        db.execute("DELETE FROM _sqlite_migrations WHERE migration_set = ?", (name,))
    db.conn.commit()


def _tables(db: sqlite_utils.Database) -> set[str]:
    return set(db.table_names())


def test_a_new_node_folder_has_every_table_from_its_creation(tmp_path: Path) -> None:
    db = create_store(tmp_path)
    assert {t for ts in NODE_LATE_TABLES.values() for t in ts} <= _tables(db)
    db.conn.close()


def test_an_older_node_folder_gains_the_tables_at_its_next_open(tmp_path: Path) -> None:
    db = create_store(tmp_path)
    _forget(db, NODE_LATE_TABLES)
    db.conn.close()
    db = open_store(tmp_path)
    assert {t for ts in NODE_LATE_TABLES.values() for t in ts} <= _tables(db)
    assert db.execute("SELECT leaf FROM purged").fetchall() == []  # m002 too
    db.conn.close()
    open_store(tmp_path).conn.close()  # and opening again applies nothing twice


def test_a_hub_folder_has_its_blob_tables_from_creation_and_gains_them_at_open(tmp_path: Path) -> None:
    store = HubStore.create(tmp_path)
    assert {"blobs", "blob_uploads"} <= _tables(store.db)
    _forget(store.db, HUB_LATE_TABLES)
    store.close()
    store = HubStore.open(tmp_path)
    assert {"blobs", "blob_uploads"} <= _tables(store.db)
    store.close()
