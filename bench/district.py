"""The whole district reconnects at once.

Every station in ``applications-20k-stations.json`` is a node on disk holding its own share of the
workload, accepted offline through ``node.commands.accept_lines``; then all of them run a full sync
round (push, then pull) against one hub at the same moment (``asyncio.gather`` of the node's real
``client.sync_round``; the hub is ``sanji hub serve`` in its own process). Reported: wall time until
the hub holds everything, records/s, p50/p99 of the stations' sync round latency, and the hub's CPU
and peak RSS. ``--backend postgres`` keeps the hub's store in a throwaway PostgreSQL cluster
(``bench/backends.py``; its server's CPU reported apart), ``--workers N`` serves it with N processes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict

from bench import backends, common


def _reconnect(stations, url: str, folder, total: int) -> tuple[list[tuple[str, float, object]], float | None]:  # type: ignore[no-untyped-def]
    """Every station runs its sync round at the same moment, each in its own thread with its own event
    loop, as separate machines would (their commits wait on the disk side by side, not one after
    another); Python work still takes turns under the GIL, on the two cores the hub also uses.
    Returns each station's (code, seconds, result) and when the hub first held all ``total`` records."""
    from node import client

    start = threading.Barrier(len(stations) + 1)
    results: list[tuple[str, float, object]] = []
    lock = threading.Lock()

    def one(st) -> None:  # type: ignore[no-untyped-def]
        start.wait()
        t0 = time.perf_counter()
        try:
            result: object = asyncio.run(client.sync_round(st, url))
        except Exception as exc:  # reported, never raised: a benchmark prints what happened
            result = exc
        with lock:
            results.append((st.code, time.perf_counter() - t0, result))

    threads = [threading.Thread(target=one, args=(st,), daemon=True) for st in stations]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    held_at: float | None = None
    while any(t.is_alive() for t in threads):
        if held_at is None and common.hub_count(folder) >= total:
            held_at = time.perf_counter() - t0
        time.sleep(0.05)
    if held_at is None and common.hub_count(folder) >= total:
        held_at = time.perf_counter() - t0
    return results, held_at


def run(records: int | None, workers: int = 1, backend: str = "sqlite") -> dict[str, object]:
    from node import commands, enrolment
    from node.station import Station

    spec = common.stations()
    lines = common.workload_lines(records)
    share: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        share[json.loads(line)["station"]].append(line)
    with common.workdir("district") as work, backends.backend(backend) as store:
        with store.quick_setup():
            hub = common.create_hub(work / "hub", store.dsn)
            tokens = common.register_stations(hub, spec)
            hub.close()
        with common.hub_server(work / "hub", workers=workers) as server:
            common.log(f"enrolling {len(spec)} stations and accepting their {len(lines)} applications offline")
            nodes = []
            accepted = 0
            t0 = time.perf_counter()
            for s in spec:
                enrolment.init_online(work / s["code"], server.url, tokens[s["code"]])
                st = Station(work / s["code"])
                out = commands.accept_lines(st, share.get(s["code"], []))
                accepted += int(str(out["accepted"]))
                nodes.append(st)
            prepare_s = time.perf_counter() - t0

            common.log(f"{len(nodes)} stations reconnect at once")
            cpu0, db0, nodes0 = server.cpu_seconds(), store.db_cpu_seconds(), time.process_time()
            t0 = time.perf_counter()
            results, held_s = _reconnect(nodes, server.url, work / "hub", accepted)
            wall = time.perf_counter() - t0
            hub_cpu, nodes_cpu = server.cpu_seconds() - cpu0, time.process_time() - nodes0
            db_cpu = store.db_cpu_seconds() - db0
            on_hub = common.hub_count(work / "hub")
            hub_rss = server.peak_rss_mb()
            for st in nodes:
                st.close()
        described = store.describe()

    failed = [(code, repr(r)) for code, _, r in results if isinstance(r, BaseException)]
    pushed = sum(int(getattr(r, "pushed", 0)) for _, _, r in results)
    pulled = sum(int(getattr(r, "pulled", 0)) for _, _, r in results)
    latencies = [t for _, t, r in results if not isinstance(r, BaseException)]
    return {
        "benchmark": "district",
        **described,
        "workers": workers,
        "stations": len(nodes),
        "records": accepted,
        "prepare_seconds": round(prepare_s, 2),
        "hub_holds_all_seconds": None if held_s is None else round(held_s, 3),
        "records_per_s": None if held_s is None else common.rate(accepted, held_s),
        "all_rounds_seconds": round(wall, 3),
        "hub_holds": on_hub,
        "pushed": pushed,
        "pulled": pulled,
        "failed": len(failed),
        "failures": failed[:5],
        "round_p50_ms": common.ms(common.percentile(latencies, 50)),
        "round_p99_ms": common.ms(common.percentile(latencies, 99)),
        "round_max_ms": common.ms(max(latencies) if latencies else None),
        "hub_cpu_seconds": round(hub_cpu, 2),
        "hub_cpu_ms_per_change": round(hub_cpu * 1000 / max(1, accepted), 3),
        "db_cpu_seconds": round(db_cpu, 2),
        "db_cpu_ms_per_change": round(db_cpu * 1000 / max(1, accepted), 3),
        "stations_cpu_seconds": round(nodes_cpu, 2),
        "hub_peak_rss_mb": hub_rss,
        **backends.load(),
    }


def main(argv: list[str]) -> int:
    p = common.parser("district", __doc__ or "")
    p.add_argument("--records", type=int, default=None, help="use the first N lines (default: all 20,000)")
    p.add_argument("--relay", action="store_true", help="also through the townships' relays (bench/district_relay.py)")
    backends.add_arguments(p)
    args = p.parse_args(argv)
    if args.relay:
        from bench import district_relay

        common.emit(district_relay.beside_direct(args.records), args.json)
        return 0
    common.emit(run(args.records, args.workers, args.backend), args.json)
    return 0
