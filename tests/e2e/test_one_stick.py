"""One USB stick for both directions, as the README shows with /media/usb: each side skips what it
wrote itself (or what is addressed the other way), quietly and counted, and records no rejection
(issue 14 items 4 and 5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hub.service import Hub as HubService
from tests.applicants import People

from .conftest import Hub, Node, ok, run_sanji


def refusals(hub: Hub) -> int:
    h = HubService.open(hub.dir)
    try:
        return h.store.rejections()[0]
    finally:
        h.close()


def test_one_stick_both_ways_skips_each_sides_own_files(
    new_village: Callable[[], Node], district_hub: Hub, people: People, tmp_path: Path
) -> None:
    v = new_village()
    v.accept(people)
    stick = tmp_path / "usb"
    before = refusals(district_hub)

    out = ok("node", "export", v.dir, "--out", stick)
    assert out["changes"] == 1
    first = ok("hub", "import", district_hub.dir, stick)
    assert first["accepted"] == 1 and first["rejected"] == [] and first["skipped"] == 0

    ok("hub", "export", district_hub.dir, "--station", v.code, "--out", stick)  # into the same folder
    back = run_sanji("node", "import", v.dir, stick)
    assert back.code == 0, back.stderr
    assert back.data["rejected"] == [], back.data
    assert back.data["skipped"] >= 1, "the station's own batch is skipped, not refused"
    assert back.data["accepted"] >= 1

    again = run_sanji("hub", "import", district_hub.dir, stick)
    assert again.code == 0, again.stderr
    assert again.data["rejected"] == [] and again.data["skipped"] >= 1, again.data
    assert again.data["duplicates"] == 1, "the station's batch, already held"
    assert refusals(district_hub) == before, "nothing on the stick counts as 拒收 on the dashboard"

    status = v.status()
    assert status["last_sync"] is not None and status["last_sync_via"] == "usb"
    assert status["pending"] == 0, "the hub's acknowledgements came back on the stick"
