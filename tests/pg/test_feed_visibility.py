"""A station's feed never skips a change that commits late (issue 15).

The first test forces the interleaving that loses a change when positions come from a sequence and
readers ask for ``position > cursor``: it proves the hazard is real on this PostgreSQL. The others prove
that positions taken from ``hub/store/pg_feed.py``'s clock at the end of the transaction close it: in the same
interleaving, when a writer rolls back, and under many concurrent writers with a reader polling.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hub.store.pg_feed import committed_head, create_clock, stamp_chain_range, take_positions

CHANGES = "CREATE TABLE changes (position bigint PRIMARY KEY, body text NOT NULL)"
PAGE = "SELECT position, body FROM changes WHERE position > %s ORDER BY position LIMIT 500"


@pytest.fixture
def connect(pg_dsn: str) -> Iterator[Any]:
    opened: list[psycopg.Connection[Any]] = []

    def make(autocommit: bool = False) -> psycopg.Connection[Any]:
        conn = psycopg.connect(pg_dsn, autocommit=autocommit)
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        conn.close()


class Reader:
    """A station pulling its feed the plain way: everything after its cursor, then move the cursor."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.cursor = 0
        self.seen: list[int] = []

    def pull(self) -> list[int]:
        rows = self.conn.execute(PAGE, (self.cursor,)).fetchall()
        got = [int(r[0]) for r in rows]
        if got:
            self.cursor = got[-1]
        self.seen += got
        return got


def wait_until_blocked(watcher: psycopg.Connection[Any], pid: int, timeout: float = 10.0) -> None:
    """Return once backend ``pid`` waits for a lock (so the interleaving is really the one we claim)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row and row[0] == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for the clock's lock")


def test_positions_from_a_sequence_lose_a_change_that_commits_late(connect: Any) -> None:
    setup = connect(autocommit=True)
    setup.execute(CHANGES)
    setup.execute("CREATE SEQUENCE position_seq START 5")
    a, b, reader = connect(), connect(), Reader(connect(autocommit=True))
    insert = "INSERT INTO changes VALUES (nextval('position_seq'), %s) RETURNING position"

    assert a.execute(insert, ("from A",)).fetchone() == (5,)  # A draws 5 and stays open
    assert b.execute(insert, ("from B",)).fetchone() == (6,)
    b.commit()
    assert reader.pull() == [6]  # 5 is not visible yet, so the cursor jumps to 6
    a.commit()
    assert reader.pull() == []  # ... and the late commit of 5 sits below the cursor for good
    assert [r[0] for r in setup.execute("SELECT position FROM changes ORDER BY 1")] == [5, 6]
    assert 5 not in reader.seen  # the hazard is real: the naive feed lost A's change


def test_positions_from_the_clock_follow_commit_order(connect: Any) -> None:
    setup = connect(autocommit=True)
    setup.execute(CHANGES)
    create_clock(setup)
    setup.execute("UPDATE feed_clock SET last = 4")
    a, b, watcher = connect(), connect(), connect(autocommit=True)
    reader = Reader(connect(autocommit=True))

    # A does its work and takes its position last, then stays open holding the clock.
    (first_a,) = take_positions(a, 1)
    a.execute("INSERT INTO changes VALUES (%s, 'from A')", (first_a,))
    assert first_a == 5
    # B finishes its work meanwhile and asks for a position: it must wait for A's commit.
    taken: dict[str, int] = {}

    def writer_b() -> None:
        (taken["b"],) = take_positions(b, 1)
        b.execute("INSERT INTO changes VALUES (%s, 'from B')", (taken["b"],))
        b.commit()

    thread = threading.Thread(target=writer_b)
    thread.start()
    try:
        wait_until_blocked(watcher, b.info.backend_pid)
        assert reader.pull() == []  # nothing committed yet: the cursor stays at 0
        a.commit()
    finally:
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert taken["b"] == 6
    assert reader.pull() == [5, 6]
    assert reader.seen == [5, 6]
    assert committed_head(reader.conn) == 6


def test_a_writer_that_rolls_back_leaves_no_gap_and_blocks_nobody_after(connect: Any) -> None:
    setup = connect(autocommit=True)
    setup.execute(CHANGES)
    create_clock(setup)
    a, b = connect(), connect()
    assert take_positions(a, 3) == range(1, 4)
    a.rollback()  # the clock's UPDATE is undone with the rest
    assert take_positions(b, 2) == range(1, 3)
    b.commit()
    assert committed_head(setup) == 2


def test_take_positions_refuses_to_run_outside_a_transaction(connect: Any) -> None:
    conn = connect(autocommit=True)
    create_clock(conn)
    with pytest.raises(RuntimeError, match="inside the transaction that writes them"):
        take_positions(conn, 1)


def test_many_writers_and_a_polling_reader_never_lose_a_change(connect: Any, pg_dsn: str) -> None:
    """Eight writers commit after random delays while a reader polls with ``position > cursor``: the
    reader ends with every committed position exactly once, in order, and rolled-back work never shows.
    (With nextval() in place of take_positions this same test loses changes at once: it has teeth.)"""
    setup = connect(autocommit=True)
    setup.execute(CHANGES)
    create_clock(setup)
    writers, rounds = 8, 25
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        rng = random.Random(worker)
        try:
            with psycopg.connect(pg_dsn) as conn:
                for n in range(rounds):
                    count = rng.randint(1, 4)
                    time.sleep(rng.random() * 0.004)  # the work before the clock, in parallel
                    positions = take_positions(conn, count)
                    rows = [(p, f"w{worker}-{n}") for p in positions]
                    conn.cursor().executemany("INSERT INTO changes VALUES (%s, %s)", rows)
                    time.sleep(rng.random() * 0.002)  # commit late, holding the clock
                    if n % 7 == 3:
                        conn.rollback()
                    else:
                        conn.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    reader = Reader(connect(autocommit=True))
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        reader.pull()
        time.sleep(0.001)
    for t in threads:
        t.join()
    reader.pull()
    assert not errors, errors
    stored = [int(r[0]) for r in setup.execute("SELECT position FROM changes ORDER BY 1")]
    assert reader.seen == stored  # every committed change, once, in order
    assert stored == list(range(1, len(stored) + 1))  # gapless, rollbacks included
    assert committed_head(setup) == len(stored)


def test_stamped_batches_reach_the_feed_log_in_commit_order(connect: Any) -> None:
    """``stamp_chain_range``: the batch that stamps first but commits late still sits below the next
    one, and a reader of the feed log never passes it; in a pipeline it travels with the COMMIT."""
    setup = connect(autocommit=True)
    create_clock(setup)
    a, b, watcher = connect(), connect(autocommit=True), connect(autocommit=True)
    reader = connect(autocommit=True)
    log = "SELECT position, origin, seq FROM feed_log WHERE position > %s ORDER BY position"

    stamp_chain_range(a, "360802-A", 1, 1, 3)  # A holds the clock, uncommitted

    def writer_b() -> None:
        # As bench/pg_work.py's ingest does it: autocommit, BEGIN and COMMIT written into the pipeline.
        with b.pipeline():
            b.execute("BEGIN")
            stamp_chain_range(b, "360802-B", 1, 1, 2)
            b.execute("COMMIT")

    thread = threading.Thread(target=writer_b)
    thread.start()
    try:
        wait_until_blocked(watcher, b.info.backend_pid)
        assert reader.execute(log, (0,)).fetchall() == []
        a.commit()
    finally:
        thread.join(timeout=10)
    assert not thread.is_alive()
    rows = reader.execute(log, (0,)).fetchall()
    assert rows == [(1, "360802-A", 1), (2, "360802-A", 2), (3, "360802-A", 3), (4, "360802-B", 1), (5, "360802-B", 2)]
    assert committed_head(reader) == 5
