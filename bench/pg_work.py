"""The hub's shape of work on PostgreSQL, written once per driver, for ``bench/pg_driver.py``.

One ingest transaction is what a hub on PostgreSQL will do for a station's batch: lock the station's
chain head (``SELECT … FOR UPDATE``, so a station's chain applies in order once across processes), lock
the records the batch touches (sorted, so two writers never deadlock), upsert them (``INSERT … ON
CONFLICT DO UPDATE``), insert the changes (text ids, ~300-byte bytea payload), bump the chain head, and
last give the batch its feed positions: from ``hub/store/pg_feed.py``'s clock (``STAMP_CHAIN_RANGE``, held
only through the commit) or, for the cost comparison, from a sequence (the naive way).

Three clients do that same work: psycopg 3 synchronous (pipeline mode, ``psycopg_pool`` and threads
for the concurrent part), psycopg 3 asynchronous (``AsyncConnection``, pipeline mode,
``AsyncConnectionPool``) and asyncpg (its pool; ``executemany`` is pipelined inside asyncpg, other
statements are one round trip each, asyncpg has no general pipeline). psycopg reads results in binary,
as asyncpg always does.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from hub.store.pg_feed import CLOCK_DDL, FEED_LOG_DDL

SCHEMA = (
    """
CREATE TABLE changes (
    origin text NOT NULL, epoch integer NOT NULL, seq bigint NOT NULL, hlc bigint NOT NULL,
    entity text NOT NULL, rid text NOT NULL, payload bytea NOT NULL,
    PRIMARY KEY (origin, epoch, seq)
);
CREATE TABLE records (
    entity text NOT NULL, rid text NOT NULL, hlc bigint NOT NULL, state bytea NOT NULL,
    PRIMARY KEY (entity, rid)
);
CREATE TABLE chains (
    origin text NOT NULL, epoch integer NOT NULL, last_seq bigint NOT NULL, head bytea NOT NULL,
    PRIMARY KEY (origin, epoch)
);
CREATE SEQUENCE change_position;
"""
    + CLOCK_DDL
    + FEED_LOG_DDL
)

# Written with $n (asyncpg's placeholders), each used once and in order, so ``psycopg_sql`` can turn
# them into %s mechanically and both drivers run the very same statements.
LOCK_CHAIN = "SELECT last_seq FROM chains WHERE origin = $1 AND epoch = $2 FOR UPDATE"
LOCK_RECORDS = "SELECT rid, hlc FROM records WHERE entity = $1 AND rid = ANY($2::text[]) ORDER BY rid FOR UPDATE"
UPSERT_RECORD = (
    "INSERT INTO records (entity, rid, hlc, state) VALUES ($1, $2, $3, $4) ON CONFLICT (entity, rid)"
    " DO UPDATE SET hlc = GREATEST(records.hlc, EXCLUDED.hlc), state = EXCLUDED.state"
)
INSERT_CHANGE = (
    "INSERT INTO changes (origin, epoch, seq, hlc, entity, rid, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
BUMP_CHAIN = "UPDATE chains SET last_seq = $1, head = $2 WHERE origin = $3 AND epoch = $4"
# hub/store/pg_feed.py's STAMP_CHAIN_RANGE, spelled with positional placeholders.
STAMP_CLOCK = (
    "WITH clock AS (UPDATE feed_clock SET last = last + $1 RETURNING last - $2 AS before)"
    " INSERT INTO feed_log (position, origin, epoch, seq)"
    " SELECT clock.before + (s - $3) + 1, $4::text, $5::integer, s"
    " FROM clock, generate_series($6::bigint, $7::bigint) AS s"
)
STAMP_SEQUENCE = (
    "INSERT INTO feed_log (position, origin, epoch, seq)"
    " SELECT nextval('change_position'), $1::text, $2::integer, s FROM generate_series($3::bigint, $4::bigint) AS s"
)
PAGE = (
    "SELECT f.position, c.origin, c.epoch, c.seq, c.hlc, c.entity, c.rid, c.payload"
    " FROM feed_log f JOIN changes c ON (c.origin, c.epoch, c.seq) = (f.origin, f.epoch, f.seq)"
    " WHERE f.position > $1 ORDER BY f.position LIMIT $2"
)


# psycopg connections run in autocommit and the ingest writes its own BEGIN and COMMIT into the
# pipeline: that is what keeps it at two round trips (see psycopg_ingest).
AUTOCOMMIT = {"autocommit": True}


def psycopg_sql(sql: str) -> str:
    return re.sub(r"\$\d+", "%s", sql)


@dataclass(frozen=True)
class Batch:
    origin: str
    first_seq: int
    changes: list[tuple[int, int, str, str, bytes]]  # (seq, hlc, entity, rid, payload)

    def lock_args(self) -> tuple[str, list[str]]:
        return "application", sorted({c[3] for c in self.changes})

    def record_rows(self) -> list[tuple[str, str, int, bytes]]:
        # The fold writes each touched record once per batch: its newest change stands in for its state.
        newest: dict[str, tuple[int, int, str, str, bytes]] = {c[3]: c for c in self.changes}
        return [("application", rid, c[1], c[4]) for rid, c in sorted(newest.items())]

    def change_rows(self) -> list[tuple[object, ...]]:
        return [(self.origin, 1, s, h, e, r, p) for s, h, e, r, p in self.changes]

    def bump_args(self) -> tuple[int, bytes, str, int]:
        return self.changes[-1][0], self.changes[-1][4][:32], self.origin, 1

    def stamp(self, clock: bool) -> tuple[str, tuple[object, ...]]:
        first, last = self.changes[0][0], self.changes[-1][0]
        if clock:
            n = last - first + 1
            return STAMP_CLOCK, (n, n, first, self.origin, 1, first, last)
        return STAMP_SEQUENCE, (self.origin, 1, first, last)


def make_batches(origin: str, total: int, sizes: list[int], seed: int) -> list[Batch]:
    """``total`` changes of one station in batches of the given sizes (picked at random); about half the
    changes touch a record the station wrote before, as status updates and supplements do."""
    rng = random.Random(seed)
    batches: list[Batch] = []
    rids: list[str] = []
    seq, hlc = 1, 1 << 40
    while seq <= total:
        size = min(rng.choice(sizes), total - seq + 1)
        changes = []
        for _ in range(size):
            if rids and rng.random() < 0.5:
                rid = rng.choice(rids)
            else:
                rid = f"0190{rng.getrandbits(112):028x}"
                rids.append(rid)
            hlc += rng.randint(1, 1 << 16)
            changes.append((seq, hlc, "application", rid, rng.randbytes(300)))
            seq += 1
        batches.append(Batch(origin, changes[0][0], changes))
    return batches


# -- psycopg 3, synchronous -------------------------------------------------------------------------


def psycopg_ingest(conn: Any, batch: Batch, clock: bool) -> None:
    """Two round trips on an autocommit connection: BEGIN and the two locks go out together and their
    answers come back; then everything else, COMMIT included, goes out and is answered at the pipeline's
    one sync. (``conn.transaction()`` or ``conn.commit()`` inside a pipeline sync more: 4–5 round trips.)"""
    stamp, stamp_args = batch.stamp(clock)
    try:
        with conn.pipeline():
            chain, records = conn.cursor(binary=True), conn.cursor(binary=True)
            chain.execute("BEGIN")
            chain.execute(psycopg_sql(LOCK_CHAIN), (batch.origin, 1))
            records.execute(psycopg_sql(LOCK_RECORDS), batch.lock_args())
            chain.fetchone()
            records.fetchall()
            chain.executemany(psycopg_sql(UPSERT_RECORD), batch.record_rows())
            chain.executemany(psycopg_sql(INSERT_CHANGE), batch.change_rows())
            chain.execute(psycopg_sql(BUMP_CHAIN), batch.bump_args())
            chain.execute(psycopg_sql(stamp), stamp_args)
            chain.execute("COMMIT")
    except BaseException:
        if conn.info.transaction_status.name != "IDLE":
            conn.execute("ROLLBACK")
        raise


def psycopg_page(conn: Any, after: int, limit: int) -> list[Any]:
    """One round trip (autocommit: no BEGIN/ROLLBACK around a read)."""
    cur = conn.cursor(binary=True)
    cur.execute(psycopg_sql(PAGE), (after, limit))
    rows: list[Any] = cur.fetchall()
    return rows


def psycopg_concurrent(dsn: str, work: list[list[Batch]], clock: bool) -> list[float]:
    from psycopg_pool import ConnectionPool

    latencies: list[float] = []
    lock = threading.Lock()
    with ConnectionPool(dsn, min_size=len(work), max_size=len(work), kwargs=AUTOCOMMIT, open=True) as pool:
        pool.wait()

        def client(batches: list[Batch]) -> None:
            mine = []
            for batch in batches:
                t0 = time.perf_counter()
                with pool.connection() as conn:
                    psycopg_ingest(conn, batch, clock)
                mine.append(time.perf_counter() - t0)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client, args=(b,)) for b in work]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return latencies


# -- psycopg 3, asynchronous ------------------------------------------------------------------------


async def apsycopg_ingest(conn: Any, batch: Batch, clock: bool) -> None:
    stamp, stamp_args = batch.stamp(clock)
    try:
        async with conn.pipeline():
            chain, records = conn.cursor(binary=True), conn.cursor(binary=True)
            await chain.execute("BEGIN")
            await chain.execute(psycopg_sql(LOCK_CHAIN), (batch.origin, 1))
            await records.execute(psycopg_sql(LOCK_RECORDS), batch.lock_args())
            await chain.fetchone()
            await records.fetchall()
            await chain.executemany(psycopg_sql(UPSERT_RECORD), batch.record_rows())
            await chain.executemany(psycopg_sql(INSERT_CHANGE), batch.change_rows())
            await chain.execute(psycopg_sql(BUMP_CHAIN), batch.bump_args())
            await chain.execute(psycopg_sql(stamp), stamp_args)
            await chain.execute("COMMIT")
    except BaseException:
        if conn.info.transaction_status.name != "IDLE":
            await conn.execute("ROLLBACK")
        raise


async def apsycopg_page(conn: Any, after: int, limit: int) -> list[Any]:
    cur = conn.cursor(binary=True)
    await cur.execute(psycopg_sql(PAGE), (after, limit))
    rows: list[Any] = await cur.fetchall()
    return rows


async def apsycopg_concurrent(dsn: str, work: list[list[Batch]], clock: bool) -> list[float]:
    from psycopg_pool import AsyncConnectionPool

    latencies: list[float] = []
    async with AsyncConnectionPool(dsn, min_size=len(work), max_size=len(work), kwargs=AUTOCOMMIT, open=False) as pool:
        await pool.wait()

        async def client(batches: list[Batch]) -> None:
            for batch in batches:
                t0 = time.perf_counter()
                async with pool.connection() as conn:
                    await apsycopg_ingest(conn, batch, clock)
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(client(b) for b in work))
    return latencies


# -- asyncpg ----------------------------------------------------------------------------------------


async def asyncpg_ingest(conn: Any, batch: Batch, clock: bool) -> None:
    """BEGIN, six statements and COMMIT, each waiting for its answer (``bench pg_driver`` counts about
    9 round trips for 100 changes: ``executemany`` pipelines its rows, nothing else). The clock is held
    from the stamp's answer to the COMMIT's: one round trip, which asyncpg cannot pipeline away."""
    stamp, stamp_args = batch.stamp(clock)
    async with conn.transaction():
        await conn.fetchrow(LOCK_CHAIN, batch.origin, 1)
        await conn.fetch(LOCK_RECORDS, *batch.lock_args())
        await conn.executemany(UPSERT_RECORD, batch.record_rows())
        await conn.executemany(INSERT_CHANGE, batch.change_rows())
        await conn.execute(BUMP_CHAIN, *batch.bump_args())
        await conn.execute(stamp, *stamp_args)


async def asyncpg_page(conn: Any, after: int, limit: int) -> list[Any]:
    rows: list[Any] = await conn.fetch(PAGE, after, limit)
    return rows


async def asyncpg_concurrent(dsn: str, work: list[list[Batch]], clock: bool) -> list[float]:
    import asyncpg

    latencies: list[float] = []
    async with asyncpg.create_pool(dsn, min_size=len(work), max_size=len(work)) as pool:

        async def client(batches: list[Batch]) -> None:
            for batch in batches:
                t0 = time.perf_counter()
                async with pool.acquire() as conn:
                    await asyncpg_ingest(conn, batch, clock)
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(client(b) for b in work))
    return latencies
