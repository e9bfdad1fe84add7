"""``hub.committer.Committer``: many handlers' writes share one commit, each still all-or-nothing,
nobody hears back before the commit has returned, and the event loop runs on while a group works."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from hub.committer import Committer


def _conn(path: Path) -> sqlite3.Connection:
    # The committer's thread uses it (opened here, on the test's thread), as the serving hub's is.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    return conn


async def test_pieces_share_a_commit_and_fail_alone(tmp_path: Path) -> None:
    conn = _conn(tmp_path / "c.db")
    committer = Committer(conn)
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
    other = sqlite3.connect(str(tmp_path / "c.db"))  # a second reader sees it all: committed
    keys = {r[0] for r in other.execute("SELECT k FROM t")}
    assert keys == {f"k{i}" for i in range(50)} | {"kept"}
    assert committer.groups < 52  # grouped, not one commit each
    other.close()
    await committer.stop()
    conn.close()


async def test_the_loop_runs_on_while_a_group_works(tmp_path: Path) -> None:
    """A group runs in the committer's thread: a slow piece (a big batch's judging and folding) holds
    neither the loop nor the other coroutines waiting on it."""
    conn = _conn(tmp_path / "c.db")
    committer = Committer(conn)
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
    conn.close()


async def test_stopping_waits_for_the_group_in_the_thread(tmp_path: Path) -> None:
    """Stopping mid-group lets the group finish and answers its handler: the connection is free for
    the hub to close, and a committed piece is not reported as lost."""
    conn = _conn(tmp_path / "c.db")
    committer = Committer(conn)
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
    assert conn.execute("SELECT k FROM t").fetchall() == [("slow",)]
    conn.close()
