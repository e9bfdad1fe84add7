"""``hub.committer.Committer``: many handlers' writes share one commit, each still all-or-nothing, and
nobody hears back before the commit has returned."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hub.committer import Committer


def _conn(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
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
