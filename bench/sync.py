"""One station pushes the whole workload to a hub over loopback, then 10% status updates.

The same work the reference peer does (``../shared/bench/peers/pouchdb``): applications written
offline into a station on disk (here through the node's real back-entry path, ``accept_lines``),
replicated to a server in another process over loopback HTTP (timed, bytes counted at the client),
then a tenth of them change status and are replicated again (timed, bytes counted). ``--backend
postgres`` and ``--workers N`` as in ``bench/backends.py`` (the database server's CPU reported apart).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench import backends, common


def _station_spec() -> list[dict[str, str]]:
    return [
        {"code": "360802-T01", "name": "兴桥镇", "tier": "township"},
        {"code": "360802-T01-05", "name": "兴桥镇塅口村", "tier": "village", "parent": "360802-T01"},
    ]


async def _push(st, url: str, counter: common.Bytes) -> tuple[int, list[str], float]:  # type: ignore[no-untyped-def]
    from node import client

    async with common.counting_session(counter, timeout=client.TIMEOUT) as session:
        t0 = time.perf_counter()
        pushed, refused = await client.push(st, session, url)
        return pushed, refused, time.perf_counter() - t0


def run(
    records: int | None, *, profile: str | None = None, workers: int = 1, backend: str = "sqlite"
) -> dict[str, object]:
    from node import commands, enrolment
    from node.station import Station

    lines = common.workload_lines(records)
    n = len(lines)
    with common.workdir("sync") as work, backends.backend(backend) as store:
        hub = common.create_hub(work / "hub", store.dsn)
        tokens = common.register_stations(hub, _station_spec())
        hub.close()
        with common.hub_server(work / "hub", workers=workers) as server:
            code = "360802-T01-05"
            enrolment.init_online(work / "node", server.url, tokens[code])
            st = Station(work / "node")

            common.log(f"accepting {n} applications through node.commands.accept_lines")
            t0 = time.perf_counter()
            accepted = commands.accept_lines(st, lines)
            accept_s = time.perf_counter() - t0
            refused_lines = accepted["refused"]
            assert isinstance(refused_lines, list)
            if refused_lines:
                common.log(f"{len(refused_lines)} line(s) refused, e.g. {refused_lines[:3]}")
            held = int(str(accepted["accepted"]))

            common.log("pushing")
            up = common.Bytes()
            cpu0, db0, node0 = server.cpu_seconds(), store.db_cpu_seconds(), time.process_time()
            profiler = _profiler(profile)
            pushed, refused, push_s = asyncio.run(_push(st, server.url, up))
            _dump(profiler, profile, "push")
            hub_cpu_push, node_cpu_push = server.cpu_seconds() - cpu0, time.process_time() - node0
            db_cpu_push = store.db_cpu_seconds() - db0
            on_hub = common.hub_count(work / "hub")

            # 10% of the applications change status at the window (撤回: the citizen withdraws).
            k = held // 10
            numbers = [
                r[0]
                for r in st.conn.execute("SELECT number FROM applications ORDER BY accepted_at, number LIMIT ?", (k,))
            ]
            common.log(f"withdrawing {k} applications through node.commands.transition")
            t0 = time.perf_counter()
            for number in numbers:
                commands.transition(st, number, "withdrawn")
            transition_s = time.perf_counter() - t0

            common.log("pushing the updates")
            down = common.Bytes()
            cpu0, db0, node0 = server.cpu_seconds(), store.db_cpu_seconds(), time.process_time()
            profiler = _profiler(profile)
            upd_pushed, upd_refused, update_s = asyncio.run(_push(st, server.url, down))
            _dump(profiler, profile, "update")
            hub_cpu_update, node_cpu_update = server.cpu_seconds() - cpu0, time.process_time() - node0
            db_cpu_update = store.db_cpu_seconds() - db0
            withdrawn = common.hub_count(work / "hub", "applications WHERE status='withdrawn'")
            hub_rss = server.peak_rss_mb()
            st.close()
        described = store.describe()

    return {
        "benchmark": "sync",
        **described,
        "workers": workers,
        "records": n,
        "accepted": held,
        "accept_seconds": round(accept_s, 3),
        "accept_records_per_s": common.rate(held, accept_s),
        "push_seconds": round(push_s, 3),
        "push_records_per_s": common.rate(held, push_s),
        "push_bytes_up_per_record": round(up.up / max(held, 1), 1),
        "push_bytes_down_per_record": round(up.down / max(held, 1), 1),
        "pushed": pushed,
        "hub_holds": on_hub,
        "push_refused": refused,
        "push_hub_cpu_seconds": round(hub_cpu_push, 2),
        "push_node_cpu_seconds": round(node_cpu_push, 2),
        "push_db_cpu_seconds": round(db_cpu_push, 2),
        "update_records": k,
        "transition_seconds": round(transition_s, 3),
        "update_seconds": round(update_s, 3),
        "update_records_per_s": common.rate(k, update_s),
        "update_bytes_up_per_record": round(down.up / max(k, 1), 1),
        "update_bytes_down_per_record": round(down.down / max(k, 1), 1),
        "update_pushed": upd_pushed,
        "hub_withdrawn": withdrawn,
        "update_refused": upd_refused,
        "update_hub_cpu_seconds": round(hub_cpu_update, 2),
        "update_node_cpu_seconds": round(node_cpu_update, 2),
        "update_db_cpu_seconds": round(db_cpu_update, 2),
        "hub_peak_rss_mb": hub_rss,
        **backends.load(),
    }


def _profiler(path: str | None):  # type: ignore[no-untyped-def]
    if not path:
        return None
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    return prof


def _dump(prof, path: str | None, phase: str) -> None:  # type: ignore[no-untyped-def]
    if prof is None or not path:
        return
    prof.disable()
    out = Path(f"{path}.{phase}.prof")
    prof.dump_stats(str(out))
    common.log(f"node-side profile of {phase} in {out}")


def main(argv: list[str]) -> int:
    p = common.parser("sync", __doc__ or "")
    p.add_argument("--records", type=int, default=None, help="use the first N lines (default: all 20,000)")
    p.add_argument("--profile", metavar="PREFIX", help="cProfile the node side into PREFIX.push.prof etc.")
    backends.add_arguments(p)
    args = p.parse_args(argv)
    common.emit(run(args.records, profile=args.profile, workers=args.workers, backend=args.backend), args.json)
    return 0
