"""Every benchmark, then the reference peer on the same machine in the same session; the figures go to
``bench/results/latest.json`` (and a chart to ``docs/bench-chart.png``). Each benchmark runs in a fresh
process. Nothing here fails on a number: a benchmark that breaks is recorded with its error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import common

ORDER = ("limits", "sync", "peer", "district", "stations", "node", "reconcile")
PAIRED = ("sync", "peer")  # run alternately --repeat times; the best run of each is compared
RESULTS = common.REPO / "bench" / "results" / "latest.json"

# The targets: (figure, how it is compared, bound). Informational only.
TARGETS = {
    "push_throughput_vs_peer": (">=", 10.0),
    "bytes_up_per_new_application_vs_peer": ("<=", 1 / 6),
    "bytes_up_per_status_update_vs_peer": ("<=", 1 / 15),
    "stations_1000_all_succeed": ("==", True),
    "stations_1000_p99_ms": ("<", 2000.0),
    "accept_p50_ms": ("<", 10.0),
    "node_idle_rss_mb": ("<", 80.0),
}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _wait_quiet(max_wait: float, threshold: float) -> None:
    """Other work on the machine skews every figure: wait (a while) for the load to settle."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] > threshold and time.monotonic() < deadline:
        time.sleep(5)


def _last_json(text: str) -> dict[str, object] | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _run(cmd: list[str], timeout: float) -> dict[str, object]:
    t0 = time.perf_counter()
    load = _load()
    try:
        proc = subprocess.run(cmd, cwd=common.REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "load_before": load}
    out = _last_json(proc.stdout)
    if out is None:
        out = {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-1500:]}"}
    out["run_seconds"] = round(time.perf_counter() - t0, 1)
    out["load_before"] = load
    return out


def _git() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=common.REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=common.REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        return rev + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = (
        subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        if subprocess.run(["which", "node"], capture_output=True).returncode == 0
        else ""
    )
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "node": node,
        "kernel": platform.release(),
    }


def _ratio(a: object, b: object) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return round(a / b, 4)
    return None


def summarise(results: dict[str, dict[str, object]]) -> dict[str, object]:
    """Sanji against the peer and against the machine's limits; the issue's targets, met or not."""
    sync, peer, limits = results.get("sync", {}), results.get("peer", {}), results.get("limits", {})
    stations, node = results.get("stations", {}), results.get("node", {})
    figures: dict[str, object] = {
        "push_throughput_vs_peer": _ratio(sync.get("push_records_per_s"), peer.get("push_records_per_s")),
        "update_throughput_vs_peer": _ratio(sync.get("update_records_per_s"), peer.get("update_records_per_s")),
        "bytes_up_per_new_application_vs_peer": _ratio(
            sync.get("push_bytes_up_per_record"), peer.get("push_bytes_up_per_record")
        ),
        "bytes_down_per_new_application_vs_peer": _ratio(
            sync.get("push_bytes_down_per_record"), peer.get("push_bytes_down_per_record")
        ),
        "bytes_up_per_status_update_vs_peer": _ratio(
            sync.get("update_bytes_up_per_record"), peer.get("update_bytes_up_per_record")
        ),
        "bytes_down_per_status_update_vs_peer": _ratio(
            sync.get("update_bytes_down_per_record"), peer.get("update_bytes_down_per_record")
        ),
        "stations_1000_all_succeed": (
            stations.get("succeeded") == stations.get("stations") if stations.get("stations") == 1000 else None
        ),
        "stations_1000_p99_ms": stations.get("p99_ms") if stations.get("stations") == 1000 else None,
        "accept_p50_ms": node.get("accept_cli_p50_ms"),
        "node_idle_rss_mb": node.get("node_idle_rss_mb"),
        # Sanji as a fraction of the machine's own ceiling for the same work.
        "push_rate_vs_raw_sqlite_upserts": _ratio(
            sync.get("push_records_per_s"), limits.get("sqlite_upsert_rows_per_s")
        ),
        "push_rate_vs_msgpack_decode": _ratio(
            sync.get("push_records_per_s"), limits.get("msgpack_decode_changes_per_s")
        ),
        "bytes_up_per_new_application_vs_zlib9_floor": _ratio(
            sync.get("push_bytes_up_per_record"), limits.get("zlib9_bytes_per_record")
        ),
    }
    met: dict[str, bool | None] = {}
    for name, (op, bound) in TARGETS.items():
        value = figures.get(name)
        if value is None:
            met[name] = None
        elif op == ">=":
            met[name] = float(value) >= float(bound)  # type: ignore[arg-type]
        elif op == "<=":
            met[name] = float(value) <= float(bound)  # type: ignore[arg-type]
        elif op == "<":
            met[name] = float(value) < float(bound)  # type: ignore[arg-type]
        else:
            met[name] = value == bound
    figures["targets_met"] = met
    return figures


RUN_FIGURES = (
    "push_records_per_s",
    "update_records_per_s",
    "push_hub_cpu_seconds",
    "push_node_cpu_seconds",
    "load_before",
    "error",
)


def _one(name: str, args: argparse.Namespace) -> dict[str, object]:
    _wait_quiet(args.wait_quiet, float(os.cpu_count() or 1))
    common.log(f"running {name} (load {_load()})")
    if name == "peer":
        return _run([str(common.PEER_RUN)] + ([str(args.records)] if args.records else []), timeout=1800)
    cmd = [sys.executable, "-m", "bench", name, "--json"]
    if name == "sync" and args.records:
        cmd += ["--records", str(args.records)]
    if name == "stations":
        cmd += ["--stations", str(args.stations)]
    return _run(cmd, timeout=1800)


def main(argv: list[str]) -> int:
    p = common.parser("all", __doc__ or "")
    p.add_argument("--records", type=int, default=None, help="shrink sync and the peer to N records")
    p.add_argument("--stations", type=int, default=1000, help="simulated stations for the stations benchmark")
    p.add_argument("--only", nargs="*", default=None, help=f"a subset of {', '.join(ORDER)}")
    p.add_argument("--no-peer", action="store_true", help="skip the reference peer")
    p.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs of sync and of the peer, alternately; the best of each is compared (load is noisy)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="seconds to wait before each benchmark for the load average to fall below the core count",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    wanted = [n for n in ORDER if (args.only is None or n in args.only) and not (n == "peer" and args.no_peer)]
    results: dict[str, dict[str, object]] = {}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    runs: dict[str, list[dict[str, object]]] = {}
    for name in wanted:
        if name in PAIRED:
            if name != PAIRED[0] and PAIRED[0] in wanted:
                continue  # already run, alternately with the first of the pair
            for _ in range(max(1, args.repeat)):
                for pname in (n for n in PAIRED if n in wanted):
                    runs.setdefault(pname, []).append(_one(pname, args))
            for pname, done in runs.items():
                results[pname] = max(done, key=lambda r: float(r.get("push_records_per_s") or 0))  # type: ignore[arg-type]
            continue
        if not (common.REPO / "bench" / f"{name}.py").exists():
            continue
        results[name] = _one(name, args)
    doc = {
        "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": _git(),
        "machine": _machine(),
        "results": results,
        "summary": summarise(results),
        "all_runs": {name: [{k: r.get(k) for k in RUN_FIGURES if k in r} for r in done] for name, done in runs.items()},
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        common.log(f"wrote {args.out}")
        try:
            from bench import chart

            chart.draw(doc, chart.CHART)
            common.log(f"drew {chart.CHART}")
        except ImportError as exc:
            common.log(f"no chart: {exc} (pip install -e '.[bench]')")
    common.emit(doc if args.json else {k: v for k, v in doc["summary"].items()}, args.json)
    return 0
