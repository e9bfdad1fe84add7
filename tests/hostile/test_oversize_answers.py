"""A station's memory stays bounded whatever the path answers or the stick holds (issue 21, row 4).

A real hub is served on loopback behind a man-in-the-middle proxy (both in a thread of this process).
The proxy passes everything on, except that it answers a pull with 2 GiB of zeros streamed from one
reused 1 MiB block (never allocated whole), with and without a Content-Length. The station runs as a
real `sanji` process, which reports its own peak RSS (VmHWM) as it exits; the test prints it. Before
the caps the same pull cost 4151 MiB and the 1 GiB file 1077 MiB on the machine these were written on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.feed import feed_page
from protocol.limits import FILE_MAX_BYTES, RESPONSE_MAX_BYTES, mib
from tests.conftest import World

from .mitm import TWO_GIB, Proxy, run_child

ONE_GIB = 1024**3
MAX_CHILD_RSS = 200 * 1024 * 1024  # generous: an idle `sanji` process is well under 100 MB


@pytest.fixture
def station(make_world: Callable[..., World]) -> Iterator[tuple[Path, Path]]:
    """(hub folder, station folder) of an enrolled village; neither is open in this process."""
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    hub_folder, st_folder = world.root / "hub", world.get("T1-V1").folder
    yield hub_folder, st_folder


@pytest.mark.parametrize("flood", ["streamed", "declared"])
def test_a_2_gib_answer_to_a_pull_is_refused_within_a_small_memory_bound(
    station: tuple[Path, Path], flood: str
) -> None:
    hub_folder, st_folder = station
    proxy = Proxy(hub_folder)
    try:
        proxy.serve(st_folder)
        proxy.flood = flood
        code, out, err, peak = run_child("node", "sync", st_folder)
        print(
            f"\n[{flood}] 2 GiB pull answer: station peak RSS {peak / 2**20:.1f} MiB, "
            f"proxy wrote {proxy.flood_sent / 2**20:.0f} MiB before the station hung up"
        )
        assert code == 2, (code, out, err)
        assert out is not None and out["feed_problems"], out
        assert "过大" in out["feed_problems"][0] and mib(RESPONSE_MAX_BYTES) in out["feed_problems"][0]
        assert peak < MAX_CHILD_RSS, f"peak RSS {peak / 2**20:.0f} MiB"
        assert proxy.flood_sent < TWO_GIB // 4, "the station must stop reading at the cap, not drain the answer"

        code, status, err, _ = run_child("node", "status", st_folder)
        assert code == 0, err
        assert status["feed_quarantined"] == 1 and status["feed_skipped"] == 0, status
        assert "过大" in status["feed_quarantine_latest"]["reason"] and "过大" in status["last_error"]

        # The path behaves again: the station's next sync is an ordinary one.
        proxy.flood = None
        code, out, err, _ = run_child("node", "sync", st_folder)
        assert code == 0 and out["feed_problems"] == [], (code, out, err)
    finally:
        proxy.close()


def test_a_1_gib_file_links_and_a_pipe_on_the_stick_are_refused_unread(
    station: tuple[Path, Path], tmp_path: Path
) -> None:
    hub_folder, st_folder = station
    from hub.service import Hub

    hub = Hub.open(hub_folder)
    try:
        genuine = feed_page(hub, "T1-V1", after=0, catalogue_version=0)
    finally:
        hub.close()
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "T1-V1_feed_0000000000-0000000001.sjd").write_bytes(genuine)
    huge = stick / "T1-V1_feed_0000000001-0000000002.sjd"
    with huge.open("wb") as f:
        f.truncate(ONE_GIB)  # sparse: 1 GiB to whoever reads it, nothing on disk
    (stick / "zero.sjd").symlink_to("/dev/zero")
    (stick / "keys.sjd").symlink_to(st_folder / "node.db")
    os.mkfifo(stick / "pipe.sjd")  # a naive reader would wait on it for ever

    code, out, err, peak = run_child("node", "import", st_folder, stick)
    print(f"\n1 GiB file on the stick: station peak RSS {peak / 2**20:.1f} MiB")
    assert code == 2, (code, out, err)
    assert out["accepted"] == 1, out
    reasons = {Path(r["file"]).name: r["reason"] for r in out["rejected"]}
    assert set(reasons) == {huge.name, "zero.sjd", "keys.sjd", "pipe.sjd"}, reasons
    assert reasons[huge.name].startswith("too_large") and str(ONE_GIB) in reasons[huge.name]
    assert str(FILE_MAX_BYTES) in reasons[huge.name]
    assert reasons["zero.sjd"].startswith("symlink") and reasons["keys.sjd"].startswith("symlink")
    assert reasons["pipe.sjd"].startswith("not_a_file")
    assert peak < MAX_CHILD_RSS, f"peak RSS {peak / 2**20:.0f} MiB"
