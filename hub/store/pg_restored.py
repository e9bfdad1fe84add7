"""A PostgreSQL hub database put back from a dump is known at open, and continues as `hub restore`
leaves a SQLite hub.

On SQLite, `sanji hub restore` copies the file back and then gives the hub a new generation (every
station's feed cursor points past the restored positions, so each starts its feed over, duplicates
skipped) and a new epoch for the hub's own changes (its seqs after the backup were handed out already,
and stations hold them). On PostgreSQL the DBA restores with ``pg_restore`` into an empty database
(README, "A hub on PostgreSQL"), and no `sanji` command runs: without these two steps a station skips
the restored hub's new changes whose positions it had already passed, and the hub's next decisions
reuse (epoch, seq) keys a station holds with other content, so they never arrive.

The database's OID is what tells: recorded the first time the hub opens it, it changes when the
database is made again (``pg_restore`` into a new database, a copy by ``CREATE DATABASE … TEMPLATE``)
and stays the same across restarts, failovers to a streaming replica and ``pg_upgrade`` (which keeps
database OIDs from PostgreSQL 15 on). A restore in place (``pg_restore --clean`` into the same
database, or a point-in-time recovery of the whole cluster) keeps the OID and is not seen here.
"""

from __future__ import annotations

import logging
import os

from hub.store.base import StoreBase
from hub.store.errors import translated

log = logging.getLogger(__name__)

DATABASE_OID = "database_oid"


def database_oid(store: StoreBase) -> int:
    with translated():
        row = store.conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
    return int(row[0])


def notice_restore(store: StoreBase) -> bool:
    """Record the database's OID; when one was recorded and it differs, the database was put back
    (or copied): start a new generation and a new hub epoch, once, whichever process opens it first.
    Whether it did."""
    oid = database_oid(store)
    with translated():
        if store.get_meta(DATABASE_OID) == oid:
            return False  # every open but the first after a restore: one read, no write
    with store.transaction():  # under the write lock: two processes opening at once bump once
        seen = store.get_meta(DATABASE_OID)
        restored = seen is not None and seen != oid
        if restored:
            store.set_meta("generation", os.urandom(8).hex())
            store.set_meta("epoch", int(str(store.get_meta("epoch", 1))) + 1)
            store.set_meta("seq", 0)
        store.set_meta(DATABASE_OID, oid)
    if restored:
        log.warning(
            "the hub database was put back from a dump (its OID is %s, was %s): new generation and hub epoch,"
            " as after `hub restore`; stations re-read their feeds and re-send what it lacks",
            oid,
            seen,
        )
    return restored


__all__ = ["DATABASE_OID", "database_oid", "notice_restore"]
