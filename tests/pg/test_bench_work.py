"""The benchmark's ingest does the work it claims (bench/pg_work.py): a figure for work that silently
failed or wrote nothing would be worse than none. The psycopg paths run here; asyncpg is a benchmark-only
dependency (the ``bench`` extra) and is exercised by ``python -m bench pg_driver`` itself."""

from __future__ import annotations

import asyncio

import psycopg

from bench import pg_work


def _setup(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(pg_work.SCHEMA)
        conn.execute("INSERT INTO chains VALUES ('360802-S00', 1, 0, '\\x00'::bytea)")


def test_sync_and_async_ingest_write_changes_records_chain_and_feed_in_order(pg_dsn: str) -> None:
    _setup(pg_dsn)
    batches = pg_work.make_batches("360802-S00", 400, [50, 100, 200], seed=3)
    half = len(batches) // 2
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for batch in batches[:half]:
            pg_work.psycopg_ingest(conn, batch, clock=True)

    async def rest() -> None:
        conn = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
        async with conn:
            for batch in batches[half:]:
                await pg_work.apsycopg_ingest(conn, batch, clock=True)

    asyncio.run(rest())
    touched = {c[3] for b in batches for c in b.changes}
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM changes").fetchone() == (400,)
        assert conn.execute("SELECT count(*) FROM records").fetchone() == (len(touched),)
        assert conn.execute("SELECT last_seq FROM chains").fetchone() == (400,)
        # the feed gives the chain back in order, positions 1..400 with no gap
        rows = []
        after = 0
        while page := pg_work.psycopg_page(conn, after, 150):
            rows += page
            after = page[-1][0]
    assert [r[0] for r in rows] == list(range(1, 401))
    assert [r[3] for r in rows] == list(range(1, 401))


def test_a_failed_ingest_rolls_back_whole_and_leaves_the_connection_usable(pg_dsn: str) -> None:
    _setup(pg_dsn)
    batch = pg_work.make_batches("360802-S00", 60, [60], seed=4)[0]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        pg_work.psycopg_ingest(conn, batch, clock=True)
        try:
            pg_work.psycopg_ingest(conn, batch, clock=True)  # the same seqs again: unique violation
        except psycopg.errors.UniqueViolation:
            pass
        else:
            raise AssertionError("a duplicate batch was accepted")
        assert conn.info.transaction_status.name == "IDLE"
        assert conn.execute("SELECT count(*), max(position) FROM feed_log").fetchone() == (60, 60)
        assert conn.execute("SELECT last FROM feed_clock").fetchone() == (60,)
