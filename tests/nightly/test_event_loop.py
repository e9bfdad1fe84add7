"""The nightly job never holds the hub's event loop: /healthz answers while it runs and while its
backup is taken (issue 20: at 100,000 applications it used to go unanswered for 16 s).

The hub is the real app with its real scheduler (``hub.server.nightly_context``, every 0.2 s). The run
is held half-way, right after its backup, on an event only the test sets: had the job run on the
loop, the loop would be stuck behind that wait and /healthz would not answer at all. Meanwhile pages
are being rendered for another client. The bound is generous (100 ms on loopback for a handler that
runs one ``SELECT 1``): this is about the event loop, not a benchmark.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hub import nightly
from tests.applicants import People

from .conftest import District, ServedHub

BOUND_S = 0.100


def _get(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=5) as resp:
        resp.read()
        assert resp.status == 200
    return time.perf_counter() - t0


def test_healthz_answers_while_the_nightly_job_and_its_backup_run(
    district: District, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = district
    with d.hub.serving():
        for _ in range(5):
            d.a.accept(people)
        d.a.sync()
    entered, release = threading.Event(), threading.Event()
    loop_threads: list[str] = []
    real_rotate = nightly.rotate_backups

    def held_rotation(hub: Any, **options: Any) -> dict[str, object]:
        out = real_rotate(hub, **options)  # the real backup, taken in the job's own thread
        loop_threads.append(threading.current_thread().name)
        entered.set()
        release.wait(30)  # the job stays in progress until the test has probed the loop
        return out

    monkeypatch.setattr(nightly, "rotate_backups", held_rotation)
    served = ServedHub(d.hub_dir, d.hub.port, nightly="every:0.2")
    with served.serving(), ThreadPoolExecutor(2) as pages:
        try:
            assert entered.wait(30), "the scheduled nightly run did not reach its backup"
            # Pages rendered for another client meanwhile (the sign-in page needs no session).
            rendering = [pages.submit(_get, served.url + "/login") for _ in range(20)]
            slowest = max(_get(served.url + "/healthz") for _ in range(20))
            for page in rendering:
                page.result(timeout=30)
            assert slowest < BOUND_S, f"/healthz took {slowest * 1000:.0f} ms while the nightly job ran"
        finally:
            release.set()
        deadline = time.monotonic() + 30
        while not [r for r in nightly_runs(d) if r[1] == "ok"] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [r for r in nightly_runs(d) if r[1] == "ok"], "the held run finished once released"
    assert loop_threads and all(name != f"hub-{d.hub.port}" for name in loop_threads), loop_threads


def nightly_runs(d: District) -> list[tuple[int, str]]:
    with d.hub_db() as conn:
        return [(int(a), str(b)) for a, b in conn.execute("SELECT id, outcome FROM nightly_runs")]
