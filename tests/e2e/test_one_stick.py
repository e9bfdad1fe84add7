"""One USB stick for both directions, as the README shows with /media/usb: each side skips what it
wrote itself (or what is addressed the other way), quietly and counted, and records no rejection
(issue 14 items 4 and 5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.service import Hub as HubService
from tests.applicants import People

from .conftest import Hub, Node
from .processes import ok, run_sanji

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)


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


def test_a_usb_only_station_is_shown_as_it_is_at_the_hub(
    new_village: Callable[[], Node], district_hub: Hub, people: People, tmp_path: Path
) -> None:
    """Issue 14 item 5, the hub's side: after a round trip by stick the dashboard shows the station as
    exchanging by USB (not 在线), with the catalogue release it holds (not v0), and the hub's next export
    starts where the station stands instead of from the beginning of its feed."""
    from hub.dashboard.data import stations
    from hub.operations import status_text
    from hub.reads import ReadModel
    from node.station import Station

    v = new_village()
    number = v.accept(people)["number"]
    stick = tmp_path / "usb"
    ok("node", "export", v.dir, "--out", stick)
    first = ok("hub", "import", district_hub.dir, stick)
    assert first["rejected"] == [], first
    ok("hub", "transition", district_hub.dir, number, "--to", "under_review")  # news for its feed
    ok("hub", "export", district_hub.dir, "--station", v.code, "--out", tmp_path / "down1")
    ok("node", "import", v.dir, tmp_path / "down1")
    held = v.status()["catalogue_version"]
    assert held >= 1

    back = tmp_path / "usb2"
    ok("node", "export", v.dir, "--out", back)
    assert any("_status_" in f for f in ok("node", "export", v.dir, "--out", tmp_path / "peek")["files"])
    again = ok("hub", "import", district_hub.dir, back)
    assert again["rejected"] == [], again

    h = HubService.open(district_hub.dir)
    try:
        (row,) = [s for s in _read(ReadModel(h), stations) if s["code"] == v.code]
        assert row["state"] == "usb", row
        assert row["catalogue_version"] == held and not row["catalogue_behind"], row
        cursor = Station(v.dir).meta.int("feed_cursor")
        assert cursor > 0 and h.store.station(v.code).feed_ack == cursor, "its feed cursor reached the hub"
    finally:
        h.close()
    status = ok("hub", "status", district_hub.dir)
    (listed,) = [s for s in status["stations"] if s["code"] == v.code]
    assert listed["last_seen_via"] == "usb" and listed["catalogue_version"] == held
    assert f"{v.code}" in status_text(status) and "（U盘）" in status_text(status)

    # An older status found later on another stick changes nothing.
    stale = sorted((tmp_path / "usb").glob("*_status_*.sjd"))
    assert stale, "the first export carried a status too"
    ok("hub", "import", district_hub.dir, *stale)
    h = HubService.open(district_hub.dir)
    try:
        (row,) = [s for s in _read(ReadModel(h), stations) if s["code"] == v.code]
        assert row["catalogue_version"] == held, "an older stick does not roll the figures back"
    finally:
        h.close()


def _read(reads: Any, work: Callable[[Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """What the dashboard's ``work`` reads, run as a page runs it (in the read model's thread)."""
    try:
        return reads.call(work)  # type: ignore[no-any-return]
    finally:
        reads.close()
