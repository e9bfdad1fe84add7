"""The hub store on PostgreSQL: the same :class:`hub.store.HubStore` interface, its SQL spoken through
``hub/store/pg_dialect.py``, its schema from ``hub/schema_pg.py``.

Where the database lives. Keys never go into it: the hub folder keeps the keys, the keyring and the
settings as on SQLite, and a settings file (``replica.folders.HUB_DATABASE``, written by ``sanji hub
init HUB --database postgresql://…``, readable by its owner only) names the database in place of
``hub.db``. Every command that opens the folder opens the store from it (:func:`database_of`).

Opening applies the migrations not applied yet, in one transaction that first takes an advisory lock
(``MIGRATION_LOCK``), so two hub processes starting at once do not race to create the same tables.

One writer at a time, by construction. Every write transaction (``transaction()``, and each group of
the serving hub's committer) takes the transaction-level advisory lock ``WRITE_LOCK`` right after
BEGIN, and holds it to the end of COMMIT. That gives PostgreSQL SQLite's one-writer semantics for
everything the hub's correctness leans on: a station's chain applies in order exactly once, merges into
one record are serialised, release numbers have no gaps, an enrolment token is used once. It also
makes the feed's positions safe as they are: ``changes.rowid`` (an identity column) is drawn inside
the lock, and PostgreSQL makes a commit visible before it releases the committer's locks, so rowids
become visible in the order they were drawn, and a station's ``position > cursor`` never skips a
change that committed late (the hazard ``hub/store/pg_feed.py`` describes needs two writers at once).
Reads, feed pages and the signature checks before a write run in parallel in every process. Finer
locks (per chain, ``FOR UPDATE`` on merged records, the ``pg_feed`` clock for positions) are a later,
measured step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Self

from hub.store.base import GroupTransaction, StoreBase, savepoint
from hub.store.errors import StoreError, translated
from hub.store.pg_restored import notice_restore
from protocol.codec import pack
from replica import folders
from replica.errors import Refused

if TYPE_CHECKING:
    from hub.store.pg_dialect import PgConnection

# Transaction-level advisory lock keys (any 64-bit numbers no other application on the database uses).
WRITE_LOCK = 0x53414E4A49_01  # "SANJI" 1: the one writer
MIGRATION_LOCK = 0x53414E4A49_02  # "SANJI" 2: migrations at open
NIGHTLY_LOCK = 0x53414E4A49_03  # "SANJI" 3: the nightly job, a session lock (hub/nightly_once.py)

_BUMP = "UPDATE store_clock SET commits = commits + 1"


def database_of(folder: Path) -> str | None:
    """The PostgreSQL DSN a hub folder names, or None for a hub on SQLite (``hub.db``)."""
    path = folder / folders.HUB_DATABASE
    if not path.exists():
        return None
    doc = json.loads(path.read_text("utf-8"))
    return str(doc["dsn"])


def need_sqlite(folder: Path, what: str, tool: str) -> None:
    """Refuse a SQLite file operation (``hub backup``, ``hub restore``) on a hub whose store is
    PostgreSQL, naming the PostgreSQL tool that does it there."""
    if database_of(folder) is not None:
        raise Refused(
            f"这个区局的数据在 PostgreSQL 里，不能用 sanji 的{what}：请用 PostgreSQL 自己的工具 {tool}"
            f"（密钥和照片仍在 {folder}，请一并备份该文件夹） (the store is PostgreSQL: use {tool})",
            code="store_is_postgresql",
        )


@contextmanager
def nightly_claim(dsn: str) -> Iterator[bool]:
    """Whether this process holds the nightly job's lock on the database, held until the block ends.

    A session lock on a connection of its own: hub processes on several machines share no lock file,
    and PostgreSQL lets go of a session lock when its connection ends, however the holder dies."""
    conn = _connect(dsn)
    try:
        yield bool(conn.execute("SELECT pg_try_advisory_lock(?)", (NIGHTLY_LOCK,)).fetchone()[0])
    finally:
        conn.close()


def _write_settings(folder: Path, dsn: str) -> None:
    path = folder / folders.HUB_DATABASE
    # The DSN may carry a password: only the hub's own user reads the file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"backend": "postgresql", "dsn": dsn}, out)


def _connect(dsn: str) -> PgConnection:
    # Imported here: psycopg is loaded by PostgreSQL hubs only, never on a SQLite hub's path.
    import psycopg

    from hub.store.pg_dialect import PgConnection

    try:
        conn = PgConnection.connect(dsn)
    except psycopg.Error as exc:
        raise Refused(
            f"连不上区局的 PostgreSQL 数据库：请检查地址、用户和密码，确认数据库已启动 (cannot connect: {exc})",
            code="database_unreachable",
        ) from exc
    if conn.raw.info.server_version < 150000:
        conn.close()
        raise Refused("区局需要 PostgreSQL 15 或更新的版本 (PostgreSQL 15 or newer needed)", code="database_too_old")
    # A statement prepared while a table is empty can keep a generic plan that scans it (found by
    # bench/pg_driver.py): plan every execution for its own parameters.
    conn.set_session("SET plan_cache_mode = force_custom_plan")
    return conn


# A page's reads: one snapshot for all of them (READ COMMITTED would take one per statement).
READ_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def open_reader(dsn: str) -> PgConnection:
    """A connection for the read model's pages that refuses every write, whatever a page runs."""
    conn = _connect(dsn)
    conn.set_session("SET default_transaction_read_only = on")
    return conn


def migrate(conn: PgConnection) -> list[str]:
    """Apply the migrations not applied yet, under ``MIGRATION_LOCK``; the names applied now."""
    from hub.schema_pg import MIGRATIONS  # here: a SQLite hub never builds the PostgreSQL schema's text

    raw = conn.raw
    raw.execute("BEGIN")
    try:
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        raw.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ)")
        done = {str(r[0]) for r in raw.execute("SELECT name FROM schema_migrations")}
        applied = []
        for name, statements in MIGRATIONS:
            if name in done:
                continue
            for statement in statements:
                raw.execute(statement.encode())  # bytes: DDL text, never parsed for placeholders
            raw.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (%s, now())", (name,))
            applied.append(name)
        if "p001_hub" in applied:
            # hub/schema.py m203's mark: the nightly check of duplicated numbers starts at the log's start.
            raw.execute("INSERT INTO hub_meta (key, value) VALUES ('nightly_numbers_rowid', %s)", (pack(0),))
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
    return applied


class PgGroupTransaction(GroupTransaction):
    """The group commit's steps on PostgreSQL: the write lock after BEGIN, the clock before COMMIT."""

    def __init__(self, store: PgStoreBase) -> None:
        super().__init__(store.conn)  # type: ignore[arg-type]
        self.store = store

    def begin(self) -> None:
        with translated():
            self.store._begin()

    def commit(self) -> None:
        with translated():
            self.store._commit()

    def rollback(self) -> None:
        self.store._rollback()

    @contextmanager
    def _piece(self) -> Iterator[None]:
        with translated(), savepoint(self.conn):
            yield

    def savepoint(self) -> AbstractContextManager[None]:
        """One piece, its driver errors as the store's own (also a ``sqlite3.DatabaseError``, which
        is what the committer catches on either backend)."""
        return self._piece()


class PgStoreBase(StoreBase):
    """The store's lifecycle and transactions over one PostgreSQL connection (autocommit: the store
    writes BEGIN and COMMIT itself); ``hub.store.PgHubStore`` is the whole store with it."""

    def __init__(self, conn: PgConnection, dsn: str) -> None:
        from hub.store.pg_dialect import PgDatabase

        self.db = PgDatabase(conn)  # type: ignore[assignment]
        self.conn = conn  # type: ignore[assignment]
        self.dsn = dsn
        self._own_commits = 0

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def create_in(cls, folder: Path, dsn: str) -> Self:
        folder.mkdir(parents=True, exist_ok=True)
        if folders.kind(folder) == "hub":
            raise FileExistsError(f"{folder} 里已经有区局了：请换一个新的空文件夹 (already holds a Sanji hub)")
        store = cls(_connect(dsn), dsn)
        try:
            with translated():
                migrate(store.conn)
            if store.get_meta("hub_id") is not None:
                raise Refused(
                    "这个 PostgreSQL 数据库里已经有区局了：请为新区局建一个空数据库 (CREATE DATABASE …)"
                    " (database already holds a Sanji hub)",
                    code="database_not_empty",
                )
            notice_restore(store)  # its OID from the start: a later restore is then told apart
        except BaseException:
            store.close()
            raise
        _write_settings(folder, dsn)
        return store

    @classmethod
    def open_at(cls, dsn: str) -> Self:
        store = cls(_connect(dsn), dsn)
        try:
            with translated():
                migrate(store.conn)
            notice_restore(store)  # put back from a dump: go on as `hub restore` leaves a SQLite hub
        except BaseException:
            store.close()
            raise
        return store

    def quick_check(self) -> str:
        """``ok`` when the database answers. PostgreSQL checks its own pages (checksums, WAL); a
        damaged cluster is found by its own tools (``pg_amcheck``), not by the hub at start-up."""
        self.ping()
        return "ok"

    def data_version(self) -> int:
        """Commits by other connections since this one opened: the store's write transactions count
        themselves in ``store_clock`` (there is no PRAGMA data_version)."""
        with translated():
            row = self.conn.execute("SELECT commits FROM store_clock").fetchone()
        return int(row[0]) - self._own_commits

    def set_cache_kib(self, kib: int) -> None:
        """Nothing to set per connection: PostgreSQL's cache is the server's ``shared_buffers``."""

    # -- transactions ------------------------------------------------------------------------------

    def _begin(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))

    def _commit(self) -> None:
        if not self.conn.in_transaction:
            # Lost with its connection (or never begun): COMMIT on a new one would report a success.
            raise StoreError("the transaction was lost with the connection to PostgreSQL; nothing of it was kept")
        self.conn.execute(_BUMP)
        self.conn.execute("COMMIT")
        self._own_commits += 1

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.settle()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with translated():
            self._begin()
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            self._commit()

    def group_transaction(self) -> GroupTransaction:
        return PgGroupTransaction(self)


__all__ = [
    "MIGRATION_LOCK",
    "READ_SNAPSHOT",
    "WRITE_LOCK",
    "PgGroupTransaction",
    "PgStoreBase",
    "database_of",
    "migrate",
    "need_sqlite",
    "open_reader",
]
