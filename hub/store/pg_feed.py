"""Feed positions on PostgreSQL that never let a station's feed skip a change that commits late.

The hazard. A station pulls its feed as "the entries with position > my cursor". On SQLite there is one
writer, so positions become visible in the order they were handed out. On PostgreSQL, with several hub
processes writing at once, a position drawn from a sequence is handed out *before* commit: transaction
A draws 5 and is still open, B draws 6 and commits, a reader sees 6 and moves its cursor to 6, then A
commits 5, which that reader never asks for again. ``tests/pg/test_feed_visibility.py`` forces exactly
this interleaving and watches the change get lost.

The remedy used here: positions come from one counter row, ``feed_clock``, and a writer takes them as
the *last* statement of its transaction (``take_positions``, or ``stamp_chain_range``, which also
writes the batch's rows of the feed log in the same statement). The UPDATE locks that row until the
writer commits or rolls back, so the next writer's UPDATE waits, and can only read the counter once
the previous writer's commit is visible. PostgreSQL releases a committing transaction's row locks only
after it has made the commit visible to new snapshots, so: whoever sees position p also sees every
committed position below p. Positions are therefore handed out in commit order, and a rolled-back
writer's UPDATE is undone with it, so they are also gapless. Readers keep the plain
``position > cursor`` query and the station keeps its one-integer cursor (``sync/feed_cursor.py``).

The price: from ``take_positions`` to the end of COMMIT (including the WAL flush) writers go one at a
time. Everything before it (chain checks, record locks, the fold, the inserts of the change bodies)
still runs in parallel, which is why the call must come last (and, with ``stamp_chain_range`` in a
psycopg pipeline, travel with the COMMIT, so that no network round trip falls inside the hold), and
why a writer must never wait on anything else while it holds the clock (that is also what rules out
deadlocks: nobody holding the clock waits for a lock, so no cycle can pass through it). A transaction
that applies several batches (``hub/committer.py`` groups up to 64) stamps them all at its end, after
every lock the group takes: the clock is then paid once per group.
``bench/pg_driver.py`` measures the price (``concurrent`` with the clock against ``concurrent_seq``);
``docs/architecture.md`` compares this with the other remedy considered, reading below the oldest
running writer's transaction-id horizon.

Pure SQL text plus functions taking a psycopg connection; no hub imports, so any store can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

# One row (the boolean key admits only TRUE): one clock for the hub's whole change log. A station's
# feed is a filtered view of that log, so one ordering serves every station's cursor.
CLOCK_DDL = """
CREATE TABLE IF NOT EXISTS feed_clock (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    last bigint NOT NULL
);
INSERT INTO feed_clock (one, last) VALUES (true, 0) ON CONFLICT (one) DO NOTHING;
"""

# Returns the first of `count` consecutive positions; the row stays locked until the caller's commit.
TAKE_POSITIONS = "UPDATE feed_clock SET last = last + %(n)s RETURNING last - %(n)s + 1"

# The feed log: which chain entry (origin, epoch, seq) holds which position. The change bodies live
# elsewhere and are written earlier in the transaction; only this small row waits for the clock.
FEED_LOG_DDL = """
CREATE TABLE IF NOT EXISTS feed_log (
    position bigint PRIMARY KEY,
    origin text NOT NULL,
    epoch integer NOT NULL,
    seq bigint NOT NULL,
    UNIQUE (origin, epoch, seq)
);
"""

# Take the clock and write the positions of one applied batch (seq first..last of one chain) in one
# statement, computed in the server: sent together with COMMIT (psycopg's pipeline), the clock is held
# for the server's own work and the commit, never for a network round trip to the client.
STAMP_CHAIN_RANGE = """
WITH clock AS (
    UPDATE feed_clock SET last = last + %(count)s RETURNING last - %(count)s AS before
)
INSERT INTO feed_log (position, origin, epoch, seq)
SELECT clock.before + (s - %(first)s) + 1, %(origin)s, %(epoch)s, s
FROM clock, generate_series(%(first)s::bigint, %(last)s::bigint) AS s
"""

# The highest position handed out by a committed writer: every position up to it is committed and
# visible to the reader that runs this (no gaps, see the module docstring).
COMMITTED_HEAD = "SELECT last FROM feed_clock"


def create_clock(conn: psycopg.Connection[Any]) -> None:
    """Create the clock and the feed log (idempotent); positions begin at 1."""
    with conn.cursor() as cur:
        for statement in (CLOCK_DDL + FEED_LOG_DDL).split(";"):
            if statement.strip():
                cur.execute(statement)


def _check_in_transaction(conn: psycopg.Connection[Any]) -> None:
    # Outside a transaction the lock would end with the statement and the guarantee with it. Without
    # autocommit, psycopg opens the transaction with this very statement, which is fine. In a pipeline
    # the status is not known until its sync; there the caller's BEGIN is trusted.
    in_pipeline = conn.pgconn.pipeline_status != 0
    if conn.autocommit and not in_pipeline and conn.info.transaction_status.name == "IDLE":
        raise RuntimeError("feed positions must be taken inside the transaction that writes them")


def take_positions(conn: psycopg.Connection[Any], count: int) -> range:
    """``count`` consecutive feed positions for the current transaction, in commit order.

    Call it as the last statement before COMMIT, inside the transaction whose rows carry the
    positions: the clock stays locked until that commit, and every other writer waits for it here.
    """
    if count < 1:
        raise ValueError("take_positions needs at least one position")
    _check_in_transaction(conn)
    row = conn.execute(TAKE_POSITIONS, {"n": count}).fetchone()
    if row is None:
        raise RuntimeError("feed_clock has no row: run create_clock first")
    first = int(row[0])
    return range(first, first + count)


def stamp_chain_range(conn: psycopg.Connection[Any], origin: str, epoch: int, first: int, last: int) -> None:
    """Give seq ``first..last`` of ``origin``'s chain (``epoch``) the next feed positions, in commit order.

    The last statement before COMMIT, like ``take_positions``; it needs no answer, so inside a psycopg
    pipeline it travels with the COMMIT and the clock is never held across a round trip.
    """
    if last < first:
        raise ValueError("an empty range takes no positions")
    _check_in_transaction(conn)
    params = {"count": last - first + 1, "first": first, "last": last, "origin": origin, "epoch": epoch}
    conn.execute(STAMP_CHAIN_RANGE, params)


def committed_head(conn: psycopg.Connection[Any]) -> int:
    """The highest committed position; a feed page may say it covers up to here."""
    row = conn.execute(COMMITTED_HEAD).fetchone()
    return int(row[0]) if row else 0
