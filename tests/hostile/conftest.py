"""Fixtures for the hostile-input tests: one real hub per module, served in-process, with the stations
the route tests (``senders``) and the signed-content tests (``world``) enrol on it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import operations

from .harness import MAX_RSS_BYTES, TALLY, TOWNSHIP, Sender, Served, application_fields, rss_peak_bytes
from .helpers import V1, V2, World

VILLAGE = f"{TOWNSHIP}-01"
REVOKED = f"{TOWNSHIP}-09"


def _scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the hub folder goes: tmpfs when there is one. These tests are about what the hub accepts, not
    about durability, and thousands of refusals each fsync a record of themselves."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with tempfile.TemporaryDirectory(prefix="sanji-hostile-", dir=_scratch(tmp_path_factory)) as folder:
        s = Served.start(Path(folder) / "hub")
        try:
            yield s
            assert s.healthy(), "the hub stopped answering /healthz"
            assert s.readonly_check() == "ok"
        finally:
            s.close()


@pytest.fixture(autouse=True)
def memory_stays_bounded() -> Iterator[None]:
    yield
    peak = rss_peak_bytes()
    assert peak < MAX_RSS_BYTES, f"peak RSS {peak / 2**20:.0f} MiB is over the {MAX_RSS_BYTES / 2**20:.0f} MiB bound"


@pytest.fixture(scope="module")
def _hub_still_serves(served: Served) -> Iterator[None]:
    yield
    assert served.healthy()


@pytest.fixture(scope="module")
def senders(served: Served) -> dict[str, Sender]:
    township = served.enrol(TOWNSHIP, "township", seed=1)
    village = served.enrol(VILLAGE, "village", TOWNSHIP, seed=2)
    revoked = served.enrol(REVOKED, "village", TOWNSHIP, seed=3)
    with served.hub.store.transaction():
        served.hub.store.revoke(REVOKED)
    return {"township": township, "village": village, "revoked": revoked}


@pytest.fixture(scope="module")
def world(served: Served) -> World:
    township = served.enrol(TOWNSHIP, "township", seed=11)
    v1 = served.enrol(V1, "village", TOWNSHIP, seed=12)
    v2 = served.enrol(V2, "village", TOWNSHIP, seed=13)
    w = World(served, township, v1, v2, {})
    for sender in (township, v1, v2):
        app_id = sender.fresh_id()
        seq, _ = served.position(sender)
        # Items decided at the district, so that no station here is the decider of its own application.
        fields = application_fields(sender, w.next_serial(), item="360802-0004")
        reply = served.push([served.batch(sender, [served.wire(sender, seq, "application", app_id, fields)])])
        assert reply.status == 200 and served.open_acks(sender, reply)[0]["result"] == "applied"
        w.own_app[sender.code] = app_id
        # Decided and closed by the district, so that its station may rate it (a rating follows completion).
        for to in ("under_review", "approved", "completed"):  # no inspection here: approved on an override
            operations.transition(served.hub, str(fields["number"]), to, override_reason="测试：不涉及踏勘")
    return w


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.by_test:
        return
    terminalreporter.write_sep("-", f"hostile cases tried: {TALLY.total}")
    for name, n in sorted(TALLY.by_test.items()):
        terminalreporter.write_line(f"  {n:6d}  {name}")
    terminalreporter.write_line(f"  peak RSS of the test process: {rss_peak_bytes() / 2**20:.0f} MiB")
