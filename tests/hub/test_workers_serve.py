"""`sanji hub serve --workers N` as real processes: N workers on one port, a supervising parent that
passes SIGTERM on, starts a killed worker again, and gives up when workers keep dying.

Driven only from outside: the CLI, /healthz (its ``worker`` field names the answering process) and
the processes' pids. A station syncs through the workers before and after one is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.workers import RESTART_LIMIT
from tests.applicants import People
from tests.e2e.conftest import DISTRICT, TOWNSHIP, Hub, init_online
from tests.e2e.processes import START_TIMEOUT, free_loopback_port, healthz, ok, run_sanji, start_sanji, stop_process
from tests.hub_sql import hub_sql

# Every test on SQLite and on PostgreSQL: `hub init --database DSN` names the database in the folder.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("hub_backend")]


def _init(folder: Path, database: str | None) -> Any:
    return ok("hub", "init", folder, "--district", DISTRICT, *(("--database", database) if database else ()))


@dataclass
class Served:
    hub: Hub
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def workers(self) -> set[int]:
        """The pids of the parent's children that are serving workers right now."""
        return set(_children(self.proc.pid))


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(p) for p in found if "hub.serve_worker" in _cmdline(int(p))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to collect its exit status.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(predicate())  # type: ignore[operator]


@pytest.fixture
def served(tmp_path: Path, hub_database: str | None) -> Iterator[Served]:
    folder = tmp_path / "hub"
    assert _init(folder, hub_database)["hub_id"] == DISTRICT
    hub = Hub(folder, free_loopback_port())
    log = tmp_path / "serve.log"
    proc = start_sanji("hub", "serve", folder, "--port", hub.port, "--workers", 2, log=log)
    s = Served(hub, proc, log)
    try:
        up = _wait(lambda: len(s.workers()) == 2 and healthz(hub.url) is not None, START_TIMEOUT)
        assert up, s.text()
        yield s
    finally:
        stop_process(proc)


def test_two_workers_keeping_the_nightly_schedule_never_run_the_job_side_by_side(
    tmp_path: Path, hub_database: str | None
) -> None:
    """Both workers' timers fire every second; the job runs in one process at a time, and the other
    worker logs that it was run elsewhere."""
    folder = tmp_path / "hub"
    _init(folder, hub_database)
    port, log = free_loopback_port(), tmp_path / "serve.log"
    proc = start_sanji("hub", "serve", folder, "--port", port, "--workers", 2, "--nightly", "every:1", log=log)
    try:
        done = _wait(lambda: len(_ended_runs(folder)) >= 3 and "另一个进程运行" in log.read_bytes().decode(), 60)
    finally:
        stop_process(proc, grace=30)
    text = log.read_text("utf-8", "replace")
    assert done, text[-3000:]
    runs = _ended_runs(folder)
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert start >= end, runs  # each run began after the one before it had ended


def _ended_runs(folder: Path) -> list[tuple[int, int]]:
    conn = hub_sql(folder, timeout=5)
    try:
        rows = conn.execute(
            "SELECT started_ms, ended_ms FROM nightly_runs WHERE ended_ms IS NOT NULL ORDER BY started_ms"
        ).fetchall()
    finally:
        conn.close()
    return [(int(a), int(b)) for a, b in rows]


def test_a_worker_count_out_of_range_is_refused(tmp_path: Path, hub_database: str | None) -> None:
    folder = tmp_path / "hub"
    _init(folder, hub_database)
    res = run_sanji("hub", "serve", folder, "--port", free_loopback_port(), "--workers", 0)
    assert res.code == 2 and res.data["error"] == "bad_workers", res
    assert "--workers" in res.data["reason"] and "1 到" in res.data["reason"]


def _answering_pids(url: str, requests: int = 200) -> set[int]:
    """Which workers answer /healthz, each request on a connection of its own, eight at a time."""

    def one(_: int) -> int | None:
        doc = healthz(url, timeout=5.0)
        return int(doc["worker"]) if doc is not None else None

    with ThreadPoolExecutor(8) as pool:
        return {pid for pid in pool.map(one, range(requests)) if pid is not None}


def test_two_workers_answer_on_one_port(served: Served) -> None:
    workers = served.workers()
    assert len(workers) == 2 and served.proc.pid not in workers
    assert (served.hub.dir / "hub.pid").read_text().strip() == str(served.proc.pid)  # hub restore checks it
    # A worker still starting (importing, opening the hub) answers nothing yet: ask until both have.
    seen: set[int] = set()
    assert _wait(lambda: seen.update(_answering_pids(served.hub.url, 40)) or seen == workers, 60), (seen, workers)
    assert seen == workers, served.text()
    text = served.text()
    assert "2 个工作进程" in text and text.count("区局工作进程") >= 2


def test_sigterm_to_the_parent_stops_every_worker(served: Served) -> None:
    workers = served.workers()
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=30) == 0, served.text()
    assert not [pid for pid in workers if _alive(pid)]
    assert "区局服务已停止" in served.text()
    assert not (served.hub.dir / "hub.pid").exists()


def test_a_killed_worker_is_started_again_and_nothing_is_lost(served: Served, tmp_path: Path) -> None:
    hub = served.hub
    hub.enroll(TOWNSHIP, tier="township", name="测试镇便民服务中心")
    village = init_online(hub, tmp_path / "village", f"{TOWNSHIP}-01")
    people = People(seed=15)
    made = [village.accept(people)["number"] for _ in range(3)]
    assert village.sync().code == 0

    victim = min(served.workers())
    os.kill(victim, signal.SIGKILL)
    assert _wait(lambda: len(served.workers()) == 2 and victim not in served.workers(), 20), served.text()
    # The parent logs the restart as it starts the new worker; its output may reach us a moment later.
    assert _wait(lambda: "意外退出" in served.text() and "正在重新启动" in served.text(), 20), served.text()
    assert served.proc.poll() is None

    made += [village.accept(people)["number"] for _ in range(3)]
    assert village.sync().code == 0
    assert sorted(hub.numbers(f"{TOWNSHIP}-01")) == sorted(made)
    assert village.status()["pending"] == 0


def test_workers_that_keep_dying_stop_the_hub_with_a_reason(served: Served) -> None:
    killed: set[int] = set()
    deadline = time.monotonic() + 60
    while served.proc.poll() is None and time.monotonic() < deadline:
        for pid in served.workers() - killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.05)
    assert served.proc.wait(timeout=30) == 2, served.text()
    assert len(killed) >= RESTART_LIMIT
    text = served.text()
    assert "反复意外退出" in text and "不再重新启动" in text
    assert not [pid for pid in killed if _alive(pid)]
