"""Ten years of data: every page the hub's operators and a station's staff open, at N applications.

``python -m bench year --applications N --station-applications M`` (defaults 1,000,000 and 20,000):

- The hub holds N applications from the district's 114 stations, accepted over ten years: most closed,
  the recent ones open, a few old ones forgotten (overdue), 容缺 materials owed and brought, conflicts,
  quarantined changes. N - M are written by ``bench/year_data.py`` (the ingest's own storage path,
  see there); the other M are one real station's, made through the real paths end to end.
- That station (a village station) accepts its M applications by back-entry
  (``node.commands.accept_lines``, dates spread over three years), pushes them through the hub's real
  ingest (``client.sync_round`` against ``sanji hub serve``), the hub decides most of them, and the
  station pulls the decisions back through its real feed. A last few moves stay local (unsynced).
- Measured, each page ``--rounds`` times over HTTP against the real servers (``sanji hub serve``,
  ``sanji node serve``): every dashboard page and the station window's pages, median and max; the
  next page of each list when the page links one; ``/healthz`` (and the station's ``/status.json``,
  its status bar) polled meanwhile, max latency; the CLI listings with wall time, peak memory and
  output size; peak RSS of both servers and the size of both databases.
- ``/healthz`` during heavy work (``bench/year_during.py``): two nightly runs (the first after a build
  or an upgrade does more), a backup taken while the hub serves, and a station's sync of 1,000 new
  applications; each beside the work's own wall time.
- ``--data DIR`` builds into DIR and keeps it; a later run with the same DIR measures again without
  building (a folder built by older code is migrated when the hub opens). ``--build-only`` stops after
  the build.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bench import common
from bench.year_data import build_hub
from bench.year_during import during

DATA_FILE = "year-data.json"  # written last by the build: a folder holding it is whole
STATION = "360802-T01-05"  # a village station of 兴桥镇
HUB_PAGES = [
    "/",
    "/stations",
    f"/stations/{STATION}",
    "/applications",
    "/applications?due=overdue",
    "/applications?due=soon",
    "/applications?due=open",
    "/applications?status=under_review",
    f"/applications?station={STATION}",
    "/applications?q=%E7%8E%8B%E4%BC%9F",
    "/applications/{number}",
    "/conflicts",
    "/quarantine",
    "/inspections",
    "/audit",
]
STATION_PAGES = [
    "/",
    "/applications",
    "/applications?due=overdue",
    "/applications?due=soon",
    "/applications?status=accepted",
    "/applications?q=%E7%8E%8B",
    "/applications/{number}",
    "/receipt?n={number}",
    "/status.json",
]
NEXT = re.compile(r'<a[^>]*rel="next"[^>]*href="([^"]+)"|<a[^>]*href="([^"]+)"[^>]*rel="next"')


def _station_lines(m: int, now: datetime) -> list[str]:
    """M back-entry lines from the shared workload, their dates spread over the last three years."""
    import random

    rng = random.Random(7)
    base = common.workload_lines()
    out = []
    for i in range(m):
        raw = json.loads(base[i % len(base)])
        at = now - timedelta(seconds=rng.randint(3600, 3 * 365 * 86400))
        raw["accepted_at"] = at.isoformat(timespec="seconds")
        out.append(json.dumps(raw, ensure_ascii=False))
    out.sort(key=lambda ln: json.loads(ln)["accepted_at"])
    return out


def _decide_station(folder: Path, code: str, now: datetime) -> int:
    """The hub decides the station's applications as operators would over the years (Hub.write, the
    real command path, admission included): the older ones reviewed, approved and completed."""
    from hub.operations import transition
    from hub.service import Hub

    hub = Hub.open(folder)
    cutoff = (now - timedelta(days=45)).isoformat()
    rows = hub.store.conn.execute(
        "SELECT number, kind FROM applications WHERE station=? AND accepted_at<? ORDER BY accepted_at", (code, cutoff)
    ).fetchall()
    moved = 0
    hub.store.conn.execute("PRAGMA synchronous=OFF")
    try:
        for number, kind in rows:
            steps = ["completed"] if kind == "immediate" else ["under_review", "approved", "completed"]
            for s in steps:
                # Items needing an on-site inspection are approved with the reason on record, as an
                # operator does when the report came on paper (no field device in this benchmark).
                why = "踏勘报告为纸质，已存档" if s == "approved" else ""
                try:
                    transition(hub, number, s, override_reason=why)
                    moved += 1
                except Exception as exc:  # reported, not raised: a benchmark prints what happened
                    common.log(f"hub could not move {number} to {s}: {exc}")
                    break
    finally:
        hub.close()
    return moved


# Runs one command and prints its peak RSS (kB). A child's ru_maxrss counts the pages it had at fork,
# so it is forked from this small wrapper, not from the benchmark (hundreds of MB by then).
_PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=sys.stdout);"
    " sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))"
)


def _cli(args: list[str], out: Path) -> dict[str, object]:
    """Run one `sanji` command; wall time, its peak RSS and output size."""
    t0 = time.perf_counter()
    with out.open("wb") as fh:
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, *common.sanji_command(), *args], stdout=fh, stderr=subprocess.PIPE
        )
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "peak_mb": round(int(done.stderr.decode().strip().splitlines()[-1] or 0) / 1024, 1),
        "output_mb": round(out.stat().st_size / 1e6, 2),
    }


async def _measure(base: str, pages: list[str], probe: str, rounds: int, cookies: dict[str, str]) -> dict:  # type: ignore[type-arg]
    """Each page ``rounds`` times; ``probe`` polled every 20 ms all along, its max latency reported."""
    probes: list[float] = []
    done = asyncio.Event()
    out: dict[str, dict[str, object]] = {}
    async with aiohttp.ClientSession(cookies=cookies) as session:

        async def poll() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                async with session.get(base + probe) as r:
                    await r.read()
                probes.append(time.perf_counter() - t0)
                await asyncio.sleep(0.02)

        poller = asyncio.create_task(poll())
        # (label, path): a list page's next page (its rel="next" link, a keyset) is measured right after
        # it, labelled "<page> next", once.
        queue = [(p, p) for p in pages]
        while queue:
            label, path = queue.pop(0)
            times, status, size, nxt = [], 0, 0, ""
            for _ in range(rounds):
                t0 = time.perf_counter()
                async with session.get(base + path, allow_redirects=False) as r:
                    body = await r.text()
                times.append(time.perf_counter() - t0)
                status, size = r.status, len(body.encode())
                found = NEXT.search(body)
                nxt = (found.group(1) or found.group(2)).replace("&amp;", "&") if found else ""
            out[label] = {
                "median_ms": common.ms(common.percentile(times, 50)),
                "max_ms": common.ms(max(times)),
                "status": status,
                "kb": round(size / 1024, 1),
            }
            if nxt and not label.endswith(" next"):
                queue.insert(0, (label + " next", nxt))
        done.set()
        await poller
    return {"pages": out, "probe_max_ms": common.ms(max(probes) if probes else None), "probes": len(probes)}


def build(work: Path, n: int, m: int) -> dict[str, object]:
    """Make the hub and the station in ``work`` (``hub/``, the station's folder), and write what the
    measuring needs to ``work/year-data.json`` last, so a folder with that file is whole."""
    from hub.passwords import hash_password
    from node import client, commands, enrolment
    from node.station import Station

    spec = common.stations()
    now = datetime.now(UTC)
    result: dict[str, object] = {"applications": n, "station_applications": m}
    hub_dir, st_dir = work / "hub", work / STATION
    hub = common.create_hub(hub_dir)
    tokens = common.register_stations(hub, spec)
    t0 = time.perf_counter()
    result.update(build_hub(hub, spec, max(n - m, 0), skip=STATION, now=now))
    result["build_hub_seconds"] = round(time.perf_counter() - t0, 1)
    with hub.store.transaction():
        hub.store.add_operator("bench", hash_password("bench-password-1"), hub.clock())
    hub.close()

    t0 = time.perf_counter()
    with common.hub_server(hub_dir) as server:
        enrolment.init_online(st_dir, server.url, tokens[STATION])
        st = Station(st_dir)
        st.conn.execute("PRAGMA synchronous=OFF")
        accepted = commands.accept_lines(st, _station_lines(m, now))
        result["station_refused_lines"] = len(accepted["refused"])  # type: ignore[arg-type]
        asyncio.run(client.sync_round(st, server.url))
        st.close()
    result["station_decided_moves"] = _decide_station(hub_dir, STATION, now)
    with common.hub_server(hub_dir) as server:
        st = Station(st_dir)
        asyncio.run(client.sync_round(st, server.url))
        open_ = commands.applications(st, "accepted")
        for r in open_[:50]:  # a few moves made since the last sync: still local
            commands.transition(st, str(r["number"]), "withdrawn")
        result["number"] = str(commands.applications(st)[-1]["number"])
        st.close()
    result["build_station_seconds"] = round(time.perf_counter() - t0, 1)
    (work / DATA_FILE).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return result


def measure(work: Path, rounds: int, number: str) -> dict[str, object]:
    """Every page, ``/healthz`` during heavy work, and the CLI listings, against the data in ``work``."""
    from hub.dashboard.auth import SESSION_COOKIE, start_session
    from hub.service import Hub

    hub_dir, st_dir = work / "hub", work / STATION
    result: dict[str, object] = {}
    result["hub_db_mb"] = round((hub_dir / "hub.db").stat().st_size / 1e6, 1)
    result["station_db_mb"] = round((st_dir / "node.db").stat().st_size / 1e6, 1)
    t0 = time.perf_counter()
    hub = Hub.open(hub_dir)  # applies this code's migrations to a folder built by an older one
    with hub.store.transaction():
        token = start_session(hub, "bench", "127.0.0.1")
    hub.close()
    result["open_hub_seconds"] = round(time.perf_counter() - t0, 1)

    with common.hub_server(hub_dir) as server:
        pages = [p.replace("{number}", number) for p in HUB_PAGES]
        hub_m = asyncio.run(_measure(server.url, pages, "/healthz", rounds, {SESSION_COOKIE: token}))
        result["hub_pages"] = hub_m["pages"]
        result["healthz_max_ms"] = hub_m["probe_max_ms"]
        result["healthz_during"] = during(server.url, hub_dir, st_dir, work)
        result["hub_rss_mb"] = server.peak_rss_mb()

    port = common.free_port()
    served = common.serve(
        ["node", "serve", str(st_dir), "--port", str(port)],
        port=port,
        log_path=work / "node-serve.log",
        probe="/status.json",
    )
    try:
        pages = [p.replace("{number}", number) for p in STATION_PAGES]
        st_m = asyncio.run(_measure(served.url, pages, "/status.json", rounds, {}))
        result["station_rss_mb"] = served.peak_rss_mb()
    finally:
        served.stop()
    result["station_pages"] = st_m["pages"]
    result["status_bar_max_ms"] = st_m["probe_max_ms"]

    result["cli"] = {
        "hub applications --json": _cli(["hub", "applications", str(hub_dir), "--json"], work / "a.json"),
        "hub applications": _cli(["hub", "applications", str(hub_dir)], work / "a.txt"),
        "hub conflicts --json": _cli(["hub", "conflicts", str(hub_dir), "--json"], work / "c.json"),
        "hub status --json": _cli(["hub", "status", str(hub_dir), "--json"], work / "s.json"),
        "node applications --json": _cli(["node", "applications", str(st_dir), "--json"], work / "n.json"),
    }
    for name in ("a.json", "a.txt", "c.json", "s.json", "n.json"):
        (work / name).unlink(missing_ok=True)
    return result


def run(n: int, m: int, rounds: int, data: Path | None, build_only: bool = False) -> dict[str, object]:
    result: dict[str, object] = {"benchmark": "year"}
    if data is None:
        with common.workdir("year") as work:
            made = build(work, n, m)
            result.update(made)
            result.update(measure(work, rounds, str(made["number"])))
        return result
    data.mkdir(parents=True, exist_ok=True)
    if (data / DATA_FILE).exists():
        made = json.loads((data / DATA_FILE).read_text(encoding="utf-8"))
        if (made["applications"], made["station_applications"]) != (n, m):
            raise SystemExit(
                f"{data} holds N={made['applications']}, M={made['station_applications']}, not N={n}, M={m}:"
                " give another --data folder"
            )
        common.log(f"measuring the data built earlier in {data}")
        result["reused_data"] = True
    else:
        if any(data.iterdir()):
            raise SystemExit(f"{data} is not empty and holds no {DATA_FILE}: give an empty or a new folder")
        made = build(data, n, m)
    result.update(made)
    if not build_only:
        result.update(measure(data, rounds, str(made["number"])))
    return result


def main(argv: list[str]) -> int:
    p = common.parser("year", __doc__ or "")
    p.add_argument("--applications", type=int, default=1_000_000, help="applications at the hub (N)")
    p.add_argument("--station-applications", type=int, default=20_000, help="one station's own (M)")
    p.add_argument("--rounds", type=int, default=7, help="requests per page")
    p.add_argument(
        "--data",
        type=Path,
        help="build the data into this folder and keep it; a later run with the same folder measures it again"
        " without building (the build is most of the time at N = 1,000,000)",
    )
    p.add_argument("--build-only", action="store_true", help="with --data: build (if not built yet), measure nothing")
    args = p.parse_args(argv)
    if args.build_only and args.data is None:
        p.error("--build-only needs --data (a folder to keep what it builds)")
    result = run(args.applications, args.station_applications, args.rounds, args.data, args.build_only)
    common.emit(result, args.json)
    return 0
