"""What the benchmarks share: the workload, a hub on disk in its own process, byte counting, /proc readings.

Everything runs on disk (WAL, synchronous=FULL, as in production) under ``$SANJI_BENCH_DIR`` (default
``/var/tmp``) and is removed afterwards unless ``SANJI_BENCH_KEEP=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
SHARED_BENCH = Path(os.environ.get("SANJI_SHARED_BENCH", REPO.parent / "shared" / "bench"))
WORKLOAD = SHARED_BENCH / "applications-20k.jsonl"
STATIONS = SHARED_BENCH / "applications-20k-stations.json"
PEER_RUN = SHARED_BENCH / "peers" / "pouchdb" / "run"
CATALOGUE = REPO / "sanji" / "data" / "catalogue-sample.json"
DISTRICT = "360802"
ALL_TIERS = ["district", "township", "street", "village", "community"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m bench {name}", description=description)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    return p


def emit(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout stays one JSON object."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- the workload -------------------------------------------------------------------------------


def workload_lines(limit: int | None = None) -> list[str]:
    lines = [ln for ln in WORKLOAD.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return lines[:limit] if limit else lines


def stations() -> list[dict[str, str]]:
    data: list[dict[str, str]] = json.loads(STATIONS.read_text(encoding="utf-8"))
    return data


def all_tier_catalogue() -> dict[str, object]:
    """The sample catalogue with every item acceptable at every tier, so that any station may take
    any line of the workload (the workload's lines come from stations of every tier)."""
    doc: dict[str, object] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    items = doc["items"]
    assert isinstance(items, list)
    for item in items:
        item["accepted_at"] = list(ALL_TIERS)
    return doc


# -- folders, ports, processes ------------------------------------------------------------------


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    base = os.environ.get("SANJI_BENCH_DIR", "/var/tmp")
    path = Path(tempfile.mkdtemp(prefix=f"sanji-bench-{name}-", dir=base))
    try:
        yield path
    finally:
        if os.environ.get("SANJI_BENCH_KEEP") != "1":
            shutil.rmtree(path, ignore_errors=True)
        else:
            log(f"kept {path}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sanji_command() -> list[str]:
    """How to run `sanji` for the server processes; ``$SANJI_BENCH_SANJI`` (a command line) runs another
    build, e.g. to compare before and after a change."""
    if os.environ.get("SANJI_BENCH_SANJI"):
        return os.environ["SANJI_BENCH_SANJI"].split()
    script = Path(sys.executable).parent / "sanji"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sanji.cli"]


def proc_rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process in kB from /proc/<pid>/status (VmRSS now, VmHWM the peak)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        raw = fh.read()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Served:
    """A process serving HTTP on loopback (`sanji hub serve` or `sanji node serve`)."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        """The server and the processes it started (`hub serve --workers N`: the parent and its workers)."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return found

    def cpu_seconds(self) -> float:
        """CPU seconds of the server and its live child processes (workers)."""
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += proc_cpu_seconds(pid)
        return total

    def peak_rss_mb(self) -> float:
        """The peak resident memory of the server, summed over its processes."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += proc_rss_kb(pid, "VmHWM")
        return round(total / 1024, 1)

    def rss_mb(self) -> float:
        return round(proc_rss_kb(self.pid, "VmRSS") / 1024, 1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(args: list[str], *, port: int, log_path: Path, probe: str, timeout: float = 60.0) -> Served:
    """Start ``sanji <args>`` and wait until ``probe`` on it answers 200."""
    return serve_command([*sanji_command(), *args], port=port, log_path=log_path, probe=probe, timeout=timeout)


def serve_command(argv: list[str], *, port: int, log_path: Path, probe: str, timeout: float = 60.0) -> Served:
    """Start ``argv`` (a server on ``port``) and wait until ``probe`` on it answers 200."""
    with log_path.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"`{' '.join(argv)}` exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url + probe, timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"`{' '.join(argv)}` did not answer within {timeout} s")
        time.sleep(0.05)
    return Served(proc, url, log_path)


@contextlib.contextmanager
def hub_server(folder: Path, *, workers: int = 1) -> Iterator[Served]:
    """`sanji hub serve` on a free loopback port, in its own process (so its CPU is its own); with
    ``workers`` > 1, `--workers N`."""
    port = free_port()
    served = serve(
        ["hub", "serve", str(folder), "--port", str(port), *(["--workers", str(workers)] if workers > 1 else [])],
        port=port,
        log_path=folder.parent / f"{folder.name}-serve.log",
        probe="/healthz",
    )
    try:
        yield served
    finally:
        served.stop()


# -- hubs and stations --------------------------------------------------------------------------


def create_hub(folder: Path, database: str | None = None):  # type: ignore[no-untyped-def]
    """A hub on disk whose latest catalogue release lets every tier accept every item; its store in
    ``database`` (a PostgreSQL DSN, ``bench/backends.py``) when given, else hub.db in the folder."""
    from hub.service import Hub

    hub = Hub.create(folder, district=DISTRICT, name="吉州区", catalogue=None, database=database)
    hub.publish(all_tier_catalogue())
    return hub


def register_stations(hub, wanted: Sequence[dict[str, str]]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Register stations (parents first); returns {code: one-time token}."""
    from hub import enrolment

    tokens: dict[str, str] = {}
    for s in sorted(wanted, key=lambda s: bool(s.get("parent"))):
        tokens[s["code"]] = enrolment.register(
            hub, station=s["code"], name=s["name"], tier=s["tier"], parent=s.get("parent", "")
        )
    return tokens


@contextlib.contextmanager
def one_village(work: Path) -> Iterator[Served]:
    """A hub at ``work/hub`` serving in its own process, and one village station under a township
    enrolled with it online at ``work/node``: the station-on-its-own benchmarks' set-up."""
    from node import enrolment

    hub = create_hub(work / "hub")
    tokens = register_stations(
        hub,
        [
            {"code": "360802-T01", "name": "兴桥镇", "tier": "township"},
            {"code": "360802-T01-05", "name": "兴桥镇塅口村", "tier": "village", "parent": "360802-T01"},
        ],
    )
    hub.close()
    with hub_server(work / "hub") as server:
        enrolment.init_online(work / "node", server.url, tokens["360802-T01-05"])
        yield server


_PG_COUNTERS: dict[str, Any] = {}


def hub_count(folder: Path, table: str = "applications") -> int:
    """Read a count from a serving hub's database (WAL lets a reader in beside the writer; on
    PostgreSQL, the database the folder's hub-database.json names)."""
    import sqlite3

    settings = folder / "hub-database.json"
    if settings.exists():
        import psycopg

        # One connection kept for the run: `district` polls every 50 ms, and a new connection each
        # time (a forked backend) would add its CPU to the database server's measured figure.
        dsn = json.loads(settings.read_text("utf-8"))["dsn"]
        if dsn not in _PG_COUNTERS or _PG_COUNTERS[dsn].closed:
            _PG_COUNTERS[dsn] = psycopg.connect(dsn, autocommit=True)
        row = _PG_COUNTERS[dsn].execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    conn = sqlite3.connect(f"file:{folder / 'hub.db'}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


# -- bytes on the wire ----------------------------------------------------------------------------


@dataclass
class Bytes:
    """HTTP body bytes as the client sees them: request bodies up, response bodies down."""

    up: int = 0
    down: int = 0

    def reset(self) -> None:
        self.up = self.down = 0


def counting_session(counter: Bytes, **kwargs: object) -> aiohttp.ClientSession:
    """A client session that adds every request body chunk sent and response body chunk received to
    ``counter`` (what the reference peer counts by wrapping fetch)."""
    trace = aiohttp.TraceConfig()

    async def sent(_s: object, _ctx: object, params: aiohttp.TraceRequestChunkSentParams) -> None:
        counter.up += len(params.chunk)

    async def received(_s: object, _ctx: object, params: aiohttp.TraceResponseChunkReceivedParams) -> None:
        counter.down += len(params.chunk)

    trace.on_request_chunk_sent.append(sent)
    trace.on_response_chunk_received.append(received)
    return aiohttp.ClientSession(trace_configs=[trace], **kwargs)  # type: ignore[arg-type]


# -- figures ----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0
