"""One sync at a time per station, and an interrupted sync says what it did (issue 14 items 15, 16)."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.applicants import People

from .conftest import Node
from .processes import run_sanji, start_sanji, stop_process


@pytest.fixture
def busy(new_village: Callable[[], Node]) -> Iterator[Node]:
    """A village whose sync lock another round holds (as a second `sanji node sync` would)."""
    v = new_village()
    fd = os.open(v.dir / "sync.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield v
    finally:
        os.close(fd)


def _opened(pid: int, name: str) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd).endswith(name) for fd in fds.iterdir())
    except (FileNotFoundError, PermissionError):
        return False


def test_a_second_sync_waits_then_refuses_and_sends_nothing(busy: Node, people: People) -> None:
    busy.accept(people)
    started = time.monotonic()
    res = run_sanji("node", "sync", busy.dir)
    waited = time.monotonic() - started
    assert res.code == 2 and "另一个同步正在进行" in res.stderr, res.stderr
    assert waited >= 4, "it waits a few seconds for the running round first"
    assert busy.status()["pending"] == 1, "nothing was pushed twice, nothing was lost"


def test_once_the_other_round_ends_a_sync_goes_through(new_village: Callable[[], Node], people: People) -> None:
    v = new_village()
    v.accept(people)
    fd = os.open(v.dir / "sync.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.close(fd)  # the other round ended (or its process died: the kernel drops the lock)
    res = run_sanji("node", "sync", v.dir)
    assert res.code == 0, res.stderr
    assert res.data["pushed"] == 1 and res.data["pending"] == 0


def test_ctrl_c_during_a_sync_says_what_stays_queued(busy: Node, people: People) -> None:
    busy.accept(people)
    busy.accept(people)
    proc = start_sanji("node", "sync", busy.dir)
    try:
        deadline = time.monotonic() + 30
        while not _opened(proc.pid, "sync.lock") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the sync is waiting for the lock"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode == 130
    text = err.decode()
    assert "同步已中断" in text and "2 条仍在队列中" in text and "没有数据丢失" in text, text
    assert "Traceback" not in text
    assert busy.status()["pending"] == 2
