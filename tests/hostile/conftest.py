"""Fixtures for the hostile-input tests: one real hub per module, served in-process."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import MAX_RSS_BYTES, TALLY, Served, rss_peak_bytes


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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.by_test:
        return
    terminalreporter.write_sep("-", f"hostile cases tried: {TALLY.total}")
    for name, n in sorted(TALLY.by_test.items()):
        terminalreporter.write_line(f"  {n:6d}  {name}")
    terminalreporter.write_line(f"  peak RSS of the test process: {rss_peak_bytes() / 2**20:.0f} MiB")
