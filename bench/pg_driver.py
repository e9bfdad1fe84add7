"""Which PostgreSQL driver the hub uses: psycopg 3 (sync and async, pipeline mode, psycopg_pool) against
asyncpg, on the hub's own shape of work (``bench/pg_work.py``), on a throwaway cluster of its own
(``tests/pg_cluster.py``, the tests' cluster code; removed afterwards).

Three phases per driver, each in a fresh database:

- ``ingest``: one client applies ``--changes`` changes of one station in transactions of 50 to 500
  changes (chain head and record locks, record upserts, positions from the feed clock, the changes, the
  chain bump); per batch p50/p99;
- ``feed``: reads the ingested log in pages of 500 by ``position > cursor``, ``--feed-passes`` times;
  per page p50/p99;
- ``concurrent``: ``--clients`` clients (one station each) commit ``--small`` transactions of 5
  changes each, from one pool; once with positions from the clock (the remedy of ``hub/store/pg_feed.py``)
  and once from a sequence (``_seq``), which prices the clock's serialised tail.

Then, once, the round trips one ingest batch and one feed page take per driver (``round_trips``:
the fastest of eight through a relay adding 25 ms less the fastest of eight straight to the server,
in units of 25 ms).

For each phase: changes (rows) per second, and CPU seconds per 1,000 changes of the client process
(``time.process_time``) apart from the PostgreSQL server's (user+system time of the postmaster and
its children from /proc, plus what the children that ended left in its cutime/cstime). ``--durable``
runs with fsync and synchronous_commit on, as a hub would; the default turns them off so the drivers'
own costs are not hidden behind the disk. ``--rtt-ms`` puts a delaying relay (``bench/pg_proxy.py``)
between the drivers and the server, as a database on another machine would. ``--rounds`` repeats
everything (drivers in a rotated order) and reports the median of each figure.

Progress goes to stderr; with ``--json`` stdout is exactly one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common, pg_work
from bench.pg_proxy import delayed
from bench.pg_work import Batch
from tests.pg_cluster import Cluster, running

DRIVERS = ("psycopg", "psycopg_async", "asyncpg")
PAGE_ROWS = 500


def server_cpu_seconds(postmaster: int) -> float:
    """CPU used so far by the cluster: the postmaster, its live children, and its ended children."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        fields = raw[raw.rindex(")") + 2 :].split()
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15]) / common.CLK_TCK  # utime stime cutime cstime
        elif ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / common.CLK_TCK
    return total


class Meter:
    """Wall, client CPU and server CPU around one phase."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster

    def __enter__(self) -> Meter:
        self.wall, self.client, self.server = time.perf_counter(), time.process_time(), self._server()
        return self

    def _server(self) -> float:
        return server_cpu_seconds(self.postmaster)

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.client = time.process_time() - self.client
        # Backends of connections closed at the end of the phase may still be exiting; once the
        # postmaster has reaped them their CPU shows in its cutime/cstime.
        time.sleep(0.2)
        self.server = self._server() - self.server

    def figures(self, count: int, latencies: list[float], unit: str) -> dict[str, float | None]:
        per_k = 1000 / count if count else 0.0
        return {
            f"{unit}_per_s": common.rate(count, self.wall),
            "p50_ms": common.ms(common.percentile(latencies, 50)),
            "p99_ms": common.ms(common.percentile(latencies, 99)),
            "client_cpu_s_per_1k": round(self.client * per_k, 4),
            "server_cpu_s_per_1k": round(self.server * per_k, 4),
        }


def _prepare(cluster: Cluster, name: str, origins: list[str], port: int) -> str:
    """A fresh database with the schema and the stations' chains; its DSN through ``port``."""
    cluster.drop_database(name)
    cluster.create_database(name)
    adds = "".join(f"INSERT INTO chains VALUES ('{o}', 1, 0, '\\x00'::bytea);" for o in origins)
    cluster.psql(pg_work.SCHEMA + adds, database=name)
    # The record lock (rid = ANY($2)) is prepared while the table is empty; a generic plan chosen then
    # (a sequential scan) sticks to the cached statement and made asyncpg's ingest 2.4x slower, its
    # server CPU 5x, in a first run. Custom plans for every driver keep the comparison about drivers;
    # the store will have to do the same (docs/architecture.md).
    cluster.psql(f'ALTER DATABASE "{name}" SET plan_cache_mode = force_custom_plan')
    return f"postgresql://postgres@127.0.0.1:{port}/{name}"


def _timed(run: Callable[[], Any], latencies: list[float]) -> Any:
    t0 = time.perf_counter()
    result = run()
    latencies.append(time.perf_counter() - t0)
    return result


def run_psycopg(
    dsn: str, meter: Meter, ingest: list[Batch], passes: int, analyze: Callable[[], None]
) -> dict[str, dict[str, Any]]:
    import psycopg

    out: dict[str, dict[str, Any]] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        lat: list[float] = []
        with meter:
            for batch in ingest:
                _timed(lambda b=batch: pg_work.psycopg_ingest(conn, b, True), lat)
        out["ingest"] = meter.figures(sum(len(b.changes) for b in ingest), lat, "changes")
        analyze()
        lat, rows = [], 0
        with meter:
            for _ in range(passes):
                after = 0
                while page := _timed(lambda a=after: pg_work.psycopg_page(conn, a, PAGE_ROWS), lat):
                    after, rows = page[-1][0], rows + len(page)
        out["feed"] = meter.figures(rows, lat, "rows")
    return out


async def run_async(
    driver: str, dsn: str, meter: Meter, ingest: list[Batch], passes: int, analyze: Callable[[], None]
) -> dict[str, Any]:
    if driver == "asyncpg":
        import asyncpg

        conn = await asyncpg.connect(dsn)
        ingest_one, page_of = pg_work.asyncpg_ingest, pg_work.asyncpg_page
    else:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        ingest_one, page_of = pg_work.apsycopg_ingest, pg_work.apsycopg_page
    out: dict[str, dict[str, Any]] = {}
    try:
        lat: list[float] = []
        with meter:
            for batch in ingest:
                t0 = time.perf_counter()
                await ingest_one(conn, batch, True)
                lat.append(time.perf_counter() - t0)
        out["ingest"] = meter.figures(sum(len(b.changes) for b in ingest), lat, "changes")
        analyze()
        lat, rows = [], 0
        with meter:
            for _ in range(passes):
                after = 0
                while True:
                    t0 = time.perf_counter()
                    page = await page_of(conn, after, PAGE_ROWS)
                    lat.append(time.perf_counter() - t0)
                    if not page:
                        break
                    after, rows = page[-1][0], rows + len(page)
        out["feed"] = meter.figures(rows, lat, "rows")
    finally:
        await conn.close()
    return out


def run_concurrent(driver: str, dsn: str, meter: Meter, work: list[list[Batch]], clock: bool) -> dict[str, Any]:
    with meter:
        if driver == "psycopg":
            lat = pg_work.psycopg_concurrent(dsn, work, clock)
        elif driver == "psycopg_async":
            lat = asyncio.run(pg_work.apsycopg_concurrent(dsn, work, clock))
        else:
            lat = asyncio.run(pg_work.asyncpg_concurrent(dsn, work, clock))
    return meter.figures(sum(len(b.changes) for bs in work for b in bs), lat, "changes")


def one_round(cluster: Cluster, args: Any, order: list[str], port: int) -> dict[str, dict[str, Any]]:
    ingest = pg_work.make_batches("360802-S00", args.changes, [50, 100, 200, 500], seed=15)
    origins = [f"360802-C{i:02d}" for i in range(args.clients)]
    work = [pg_work.make_batches(o, args.small * 5, [5], seed=i) for i, o in enumerate(origins)]
    meter = Meter(cluster.postmaster_pid())
    results: dict[str, dict[str, Any]] = {}
    for driver in order:
        common.log(f"{driver}: ingest {args.changes} changes, feed x{args.feed_passes}")
        dsn = _prepare(cluster, f"bench_{driver}", ["360802-S00", *origins], port)

        # Statistics of the freshly filled tables before reading them (untimed): planned on an empty
        # log's statistics, the feed's join read the whole change table per page (5x the server CPU).
        # A running hub has autovacuum's; a freshly loaded one must ANALYZE too.
        def analyze(db: str = f"bench_{driver}") -> None:
            cluster.psql("ANALYZE", database=db)

        if driver == "psycopg":
            phases = run_psycopg(dsn, meter, ingest, args.feed_passes, analyze)
        else:
            phases = asyncio.run(run_async(driver, dsn, meter, ingest, args.feed_passes, analyze))
        common.log(f"{driver}: {args.clients} clients x {args.small} transactions, clock then sequence")
        phases["concurrent"] = run_concurrent(driver, dsn, meter, work, clock=True)
        dsn = _prepare(cluster, f"bench_{driver}_seq", origins, port)
        phases["concurrent_seq"] = run_concurrent(driver, dsn, meter, work, clock=False)
        results[driver] = phases
    return results


PROBE_RTT_S = 0.025


async def _probe_async(driver: str, dsn: str, batches: list[Batch]) -> tuple[list[float], list[float]]:
    if driver == "asyncpg":
        import asyncpg

        conn: Any = await asyncpg.connect(dsn)
        ingest_one, page_of = pg_work.asyncpg_ingest, pg_work.asyncpg_page
    else:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        ingest_one, page_of = pg_work.apsycopg_ingest, pg_work.apsycopg_page
    ingest_t, page_t = [], []
    try:
        for batch in batches:
            t0 = time.perf_counter()
            await ingest_one(conn, batch, True)
            ingest_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await page_of(conn, 0, PAGE_ROWS)
            page_t.append(time.perf_counter() - t0)
    finally:
        await conn.close()
    return ingest_t, page_t


def _probe(driver: str, dsn: str, batches: list[Batch]) -> tuple[list[float], list[float]]:
    """Times of each ingest (and of a feed page after it) for ``batches``, on one connection."""
    if driver != "psycopg":
        return asyncio.run(_probe_async(driver, dsn, batches))
    import psycopg

    ingest_t: list[float] = []
    page_t: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for batch in batches:
            _timed(lambda b=batch: pg_work.psycopg_ingest(conn, b, True), ingest_t)
            _timed(lambda: pg_work.psycopg_page(conn, 0, PAGE_ROWS), page_t)
    return ingest_t, page_t


def round_trips(cluster: Cluster) -> dict[str, float]:
    """Round trips per ingest batch (100 changes) and per feed page: the fastest of eight through a
    relay adding 25 ms, less the fastest of eight straight to the server, in units of 25 ms."""
    batches = pg_work.make_batches("360802-R00", 100 * 16 * len(DRIVERS), [100], seed=7)
    out: dict[str, float] = {}
    with delayed(cluster.port, PROBE_RTT_S * 1000) as relay:
        for i, driver in enumerate(DRIVERS):
            mine = batches[i * 16 : i * 16 + 16]
            _prepare(cluster, f"probe_{driver}", ["360802-R00"], cluster.port)
            direct = _probe(driver, f"postgresql://postgres@127.0.0.1:{cluster.port}/probe_{driver}", mine[:8])
            relayed = _probe(driver, f"postgresql://postgres@127.0.0.1:{relay}/probe_{driver}", mine[8:])
            for phase, k in (("ingest", 0), ("feed", 1)):
                extra = min(relayed[k]) - min(direct[k])
                out[f"{driver}.{phase}.round_trips"] = round(extra / PROBE_RTT_S, 1)
    return out


def _median(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float)]
    return round(statistics.median(numbers), 4) if numbers else None


def main(argv: list[str]) -> int:
    p = common.parser("pg_driver", "psycopg 3 against asyncpg on the hub's work, on a throwaway PostgreSQL")
    p.add_argument("--changes", type=int, default=30_000, help="changes ingested per driver")
    p.add_argument("--feed-passes", type=int, default=3, help="reads of the whole log in pages of 500")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (one station each)")
    p.add_argument("--small", type=int, default=200, help="5-change transactions per concurrent client")
    p.add_argument("--rounds", type=int, default=1, help="repeat all, rotating the drivers; report medians")
    p.add_argument("--durable", action="store_true", help="fsync and synchronous_commit on, as a hub runs")
    p.add_argument("--rtt-ms", type=float, default=0.0, help="add this round trip (bench/pg_proxy.py relay)")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    rounds: list[dict[str, dict[str, Any]]] = []
    with running(durable=args.durable) as cluster, contextlib.ExitStack() as stack:
        version = cluster.psql("SHOW server_version")
        port = stack.enter_context(delayed(cluster.port, args.rtt_ms)) if args.rtt_ms > 0 else cluster.port
        for r in range(args.rounds):
            order = list(DRIVERS[r % 3 :] + DRIVERS[: r % 3])
            rounds.append(one_round(cluster, args, order, port))
        common.log("round trips per ingest batch and per feed page, through a 25 ms relay")
        trips = round_trips(cluster)
    result: dict[str, object] = {
        "postgresql": version,
        "durable": args.durable,
        "rtt_ms": args.rtt_ms,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    for driver in DRIVERS:
        for phase in ("ingest", "feed", "concurrent", "concurrent_seq"):
            for key in rounds[0][driver][phase]:
                result[f"{driver}.{phase}.{key}"] = _median([r[driver][phase][key] for r in rounds])
    result.update(trips)
    common.emit(result, args.json)
    return 0
