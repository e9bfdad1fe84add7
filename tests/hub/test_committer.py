"""``hub.committer.Committer``: many handlers' writes share one commit, each still all-or-nothing,
nobody hears back before the commit has returned, and the event loop runs on while a group works."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.committer import Committer
from hub.store import PgHubStore
from hub.store.pg_dialect import PgConnection


@dataclass
class Db:
    """A connection with a table ``t`` to write in, what the committer is given for it (the bare
    connection on SQLite; on PostgreSQL the store, whose groups take the one-writer lock), and a
    second connection for reading what was committed."""

    conn: Any
    target: object
    reader: Callable[[], Any]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        # The committer's thread uses it (opened here, on the test's thread), as the serving hub's is.
        conn = sqlite3.connect(str(tmp_path / "c.db"), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
        yield Db(conn, conn, lambda: sqlite3.connect(str(tmp_path / "c.db")))
        conn.close()
        return
    dsn = str(request.getfixturevalue("pg_dsn"))
    store = PgHubStore.open_at(dsn)
    store.conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    yield Db(store.conn, store, lambda: PgConnection.connect(dsn))
    store.close()


async def test_pieces_share_a_commit_and_fail_alone(db: Db) -> None:
    conn = db.conn
    committer = Committer(db.target)
    committer.start()

    def write(k: str, v: int) -> int:
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, v))
        return v

    def half_then_fail() -> None:
        conn.execute("INSERT INTO t (k, v) VALUES ('half', 1)")
        raise ValueError("refused")

    def keep_one_part() -> str:
        with committer.atomic():
            conn.execute("INSERT INTO t (k, v) VALUES ('kept', 1)")
        try:
            with committer.atomic():
                conn.execute("INSERT INTO t (k, v) VALUES ('dropped', 1)")
                raise KeyError("x")
        except KeyError:
            pass
        return "ok"

    futures = [committer.submit(lambda i=i: write(f"k{i}", i)) for i in range(50)]
    failing = committer.submit(half_then_fail)
    partial = committer.submit(keep_one_part)
    assert await asyncio.gather(*futures) == list(range(50))
    with pytest.raises(ValueError):
        await failing
    assert await partial == "ok"
    assert not conn.in_transaction  # answered only after COMMIT
    other = db.reader()  # a second reader sees it all: committed
    keys = {r[0] for r in other.execute("SELECT k FROM t")}
    assert keys == {f"k{i}" for i in range(50)} | {"kept"}
    assert committer.groups < 52  # grouped, not one commit each
    other.close()
    await committer.stop()


async def test_the_loop_runs_on_while_a_group_works(db: Db) -> None:
    """A group runs in the committer's thread: a slow piece (a big batch's judging and folding) holds
    neither the loop nor the other coroutines waiting on it."""
    conn = db.conn
    committer = Committer(db.target)
    committer.start()

    def slow() -> str:
        time.sleep(0.8)
        conn.execute("INSERT INTO t (k, v) VALUES ('slow', 1)")
        return "done"

    ticks: list[float] = []

    async def tick() -> None:
        for _ in range(20):
            t0 = time.perf_counter()
            await asyncio.sleep(0.02)
            ticks.append(time.perf_counter() - t0)

    loop = asyncio.get_running_loop()
    started = loop.time()
    result, _ = await asyncio.gather(committer.run(slow), tick())
    assert result == "done"
    assert loop.time() - started >= 0.8
    # On the loop, one tick would have waited out the whole 0.8 s piece; generous for a busy machine.
    assert max(ticks) < 0.4, ticks
    await committer.stop()


async def test_stopping_waits_for_the_group_in_the_thread(db: Db) -> None:
    """Stopping mid-group lets the group finish and answers its handler: the connection is free for
    the hub to close, and a committed piece is not reported as lost."""
    conn = db.conn
    committer = Committer(db.target)
    committer.start()
    entered = threading.Event()

    def slow() -> str:
        entered.set()
        time.sleep(0.3)
        conn.execute("INSERT INTO t (k, v) VALUES ('slow', 1)")
        return "done"

    fut = committer.submit(slow)
    while not entered.is_set():
        await asyncio.sleep(0.01)
    await committer.stop()
    assert fut.result() == "done"
    assert not conn.in_transaction
    assert [tuple(r) for r in conn.execute("SELECT k FROM t").fetchall()] == [("slow",)]
