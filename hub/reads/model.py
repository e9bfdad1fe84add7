"""The read model's machinery: read-only connections, the worker threads they live on, and the hub as
a page sees it (:class:`ReadHub`).

A page (its SQL and its Jinja rendering) runs in a worker thread over a connection of its own, opened
read-only, never on the event loop and never over the serving connection, which belongs to the loop
and the group committer. The hub database is in WAL mode (``replica/db.py``), so a reader never waits
for a writer and a writer never waits for a reader; every page opens a fresh read transaction, so it
sees every write committed before it started, and one consistent snapshot throughout. On PostgreSQL
(a hub folder that names a database) each worker's connection is read-only the same way
(``default_transaction_read_only``) and a page's transaction is REPEATABLE READ, for the one snapshot.

SQLite's thread rules: each worker thread opens its own connection on first use and is the only thread
that ever runs a statement on it (``check_same_thread=False`` only so :meth:`ReadModel.close` may close
it from the loop's thread once the workers have stopped).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import sqlite_utils

from hub.reads.queries import HubReads
from hub.state import HubState
from hub.store import DB_NAME, READ_SNAPSHOT, HubStore, PgHubStore, database_of, open_reader
from replica.records import RecordStore

if TYPE_CHECKING:
    from replica.keyfile import KeyPair

T = TypeVar("T")
WORKERS = 2  # two pages at once on a two-core hall PC; more would only queue on the disk
READ_CACHE_KIB = 32 * 1024  # each reader keeps the hot index pages of the lists it serves


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that can only read (``mode=ro``): a page cannot write, whatever it runs."""
    conn = sqlite3.connect(
        path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None, check_same_thread=False, timeout=30
    )
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute(f"PRAGMA cache_size=-{READ_CACHE_KIB}")
    return conn


class ReadHub(HubState):
    """The hub as a page reads it: the same :class:`HubState` interface (so ``operations.show``,
    ``inspection.list_inspections`` and the others read through it unchanged), over one read-only
    connection, plus the read model's own queries as ``reads``.

    Its keys and clock are the serving hub's, looked up on every use: a key rotation or a test's fake
    clock is seen at once. Who is who (``tiers``) is read again for every page (``begin``), since an
    enrolment or a revocation changes it; parsed catalogue releases are kept, as the serving hub keeps
    them, because a release never changes once published."""

    def __init__(self, main: HubState, conn: sqlite3.Connection) -> None:
        # HubState.__init__ is not called: it would copy keys and clock once, and read hub_id and name
        # again over this connection although the serving hub already holds them.
        self._main = main
        self.folder = main.folder
        dsn = database_of(main.folder)
        self.store = HubStore(sqlite_utils.Database(conn)) if dsn is None else PgHubStore(conn, dsn)  # type: ignore[arg-type]
        self.begin = "BEGIN" if dsn is None else READ_SNAPSHOT
        self.hub_id = main.hub_id
        self.name = main.name
        self.allow_unsealed = False
        self._tiers = None
        self._catalogue = None
        self._releases = {}
        self.records = RecordStore(self.store.db, self.authority)
        self.reads = HubReads(conn)

    @property  # type: ignore[override]
    def keys(self) -> KeyPair:
        return self._main.keys

    @property  # type: ignore[override]
    def clock(self) -> Callable[[], int]:
        return self._main.clock

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn


class ReadModel:
    """Runs read-only work for the pages in a small pool of threads; see the module docstring. Made and
    closed by the app (``hub/app.py``); :meth:`call` serves code that is not on a loop (tests)."""

    def __init__(self, main: HubState, *, workers: int = WORKERS) -> None:
        self._main = main
        self._path = main.folder / DB_NAME
        self._dsn = database_of(main.folder)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sanji-reads")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []
        self._trace: Callable[[str], object] | None = None

    def _hub(self) -> ReadHub:
        rh = getattr(self._local, "hub", None)
        if rh is None:
            conn = open_read_only(self._path) if self._dsn is None else open_reader(self._dsn)
            with self._lock:
                self._opened.append(conn)  # type: ignore[arg-type]
                conn.set_trace_callback(self._trace)
            rh = self._local.hub = ReadHub(self._main, conn)
        assert isinstance(rh, ReadHub)
        return rh

    def _within(self, work: Callable[[ReadHub], T]) -> T:
        rh = self._hub()
        rh.forget_tiers()
        rh.conn.execute(rh.begin)  # one snapshot for the whole page, taken at its first read
        self._local.current = rh
        try:
            return work(rh)
        finally:
            self._local.current = None
            rh.conn.execute("ROLLBACK")  # nothing to commit: the connection cannot write

    def current(self) -> ReadHub | None:
        """The hub of the work running on this thread, None outside of one (the metrics' collector reads
        through it while the registry is encoded in :meth:`run`)."""
        rh = getattr(self._local, "current", None)
        return rh if isinstance(rh, ReadHub) else None

    async def run(self, work: Callable[[ReadHub], T]) -> T:
        """Run ``work`` in a worker thread inside a fresh read transaction; the loop goes on meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._within, work)

    def call(self, work: Callable[[ReadHub], T]) -> T:
        """:meth:`run` for a caller with no event loop: waits for the answer."""
        return self._pool.submit(self._within, work).result()

    def trace(self, callback: Callable[[str], object] | None) -> None:
        """Set SQLite's trace callback on every connection of the model, those opened later included
        (``tests/test_query_plans.py`` records what the pages run)."""
        with self._lock:
            self._trace = callback
            for conn in self._opened:
                conn.set_trace_callback(callback)

    def close(self) -> None:
        """Wait for the work under way, then close every connection."""
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
