"""What `sanji node sync` tells people at a terminal: whether the photos went, and how far a long
round has got."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp.test_utils import TestServer

from hub.app import HubConfig, create_app
from node import client
from node.sync_text import blob_text as _blob_text  # moved out of node/cli.py (its 400-line limit)
from node.sync_text import print_progress as _print_progress
from node.sync_text import pulled_text
from tests.conftest import World


def test_sync_says_whether_the_photos_reached_the_hub() -> None:
    assert _blob_text({"complete": 0, "pending": 0, "errors": []}) == ""  # nothing to say for most stations
    assert "照片 4 个已送达区局" in _blob_text({"complete": 4, "pending": 0})
    text = _blob_text({"complete": 1, "pending": 3})
    assert "1 个已送达" in text and "3 个待传" in text and "续传" in text


def test_sync_counts_the_staff_accounts_the_feed_applied() -> None:
    assert pulled_text({"pulled": 0, "staff": 0}) == "下载 0 条"
    assert pulled_text({"pulled": 0, "staff": 1}) == "下载 0 条（另有工作人员账户更新 1 个）"


def test_a_push_reports_its_progress(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.clock.ms = int(time.time() * 1000)  # the served hub below reads the real clock
    world.station("360802-T01", "township")
    village = world.station("360802-T01-05", "village", "360802-T01")
    for _ in range(5):
        world.accept(village, "360802-0001")
    seen: list[tuple[str, int, int]] = []

    async def go() -> client.RoundResult:
        world.hub.close()
        server = TestServer(create_app(HubConfig(folder=world.root / "hub")))
        await server.start_server()
        try:
            return await client.sync_round(village, str(server.make_url("")), progress=lambda *a: seen.append(a))
        finally:
            await server.close()

    result = asyncio.run(go())
    assert result.pushed == 5 and seen and seen[-1] == ("push", 5, 5)
    _print_progress(*seen[-1])
    assert "已上传 5/5 条变更" in capsys.readouterr().err


def test_a_paused_application_says_so_once(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from node import commands
    from node.assignment import assign
    from sanji.cli import main as sanji_main
    from sync.inspection import PAUSED_LABEL

    township = world.station("360802-T01", "township")
    village = world.station("360802-T01-05", "village", "360802-T01")
    world.station("360802-F01", "field")
    number = str(world.accept(village, "360802-0006")["number"])  # 临时救助申请: the township decides
    world.push(village)
    world.pull(township)
    commands.transition(township, number, "under_review")
    assign(township, number, "360802-F01")
    township.close()
    assert sanji_main(["node", "applications", str(world.root / "360802-T01")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(number))
    assert line.endswith(PAUSED_LABEL) and line.count("时限") == 1, line


def test_the_hub_listing_says_paused_once() -> None:
    from present.listing import applications_text
    from sync.inspection import PAUSED_LABEL

    row = {
        "number": "N-1",
        "status": "inspecting",
        "item": "360802-0006",
        "applicant_name": "测试",
        "accepted_at": "2026-03-02T09:00:00+08:00",
        "due_date": "2026-03-30",
        "paused": True,
    }
    assert applications_text({"applications": [row]}).endswith(PAUSED_LABEL)
    assert applications_text({"applications": [{**row, "paused": False}]}).endswith("时限 2026-03-30")


def test_a_field_devices_status_counts_the_photos_not_yet_at_the_hub(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hub import operations
    from hub.inspection import assign
    from node import inspection
    from node.status import gather
    from tests.inspection.conftest import photo

    world.station("360802-T01", "township")
    village = world.station("360802-T01-05", "village", "360802-T01")
    field = world.station("360802-F01", "field")
    number = str(world.accept(village, "360802-0004")["number"])  # the district decides; inspection required
    world.push(village)
    operations.transition(world.hub, number, "under_review")
    task = str(assign(world.hub, number, "360802-F01")["task"])
    world.pull(field)
    assert gather(field, hub_reachable=None)["photos_pending"] == 0
    inspection.report(
        field,
        task,
        result="pass",
        findings=["属实"],
        photos=[photo(tmp_path, "a.jpg", 5_000), photo(tmp_path, "b.jpg", 6_000)],
    )
    assert gather(field, hub_reachable=None)["photos_pending"] == 2
    assert gather(village, hub_reachable=None)["photos_pending"] == 0


def test_a_round_that_brought_only_a_disabled_account_says_so(world: World) -> None:
    """`hub disable-staff`, then `node sync`: the account is disabled at the station, and the round
    counts it (it said "下载 0 条", as if nothing came)."""
    from hub import staff
    from sync.staff_password import ScryptParams

    world.clock.ms = int(time.time() * 1000)
    world.station("360802-T01", "township")
    village = world.station("360802-T01-05", "village", "360802-T01")
    cheap = ScryptParams(n=2**10, r=8, p=1)
    staff.add_staff(
        world.hub, station=village.code, user="zhangsan", name="名", role="staff", password="a-good-pw", params=cheap
    )

    async def go() -> client.RoundResult:
        world.hub.close()
        server = TestServer(create_app(HubConfig(folder=world.root / "hub")))
        await server.start_server()
        try:
            return await client.sync_round(village, str(server.make_url("")))
        finally:
            await server.close()

    assert asyncio.run(go()).staff == 1
    world.hub = type(world.hub).open(world.root / "hub")
    staff.disable_staff(world.hub, station=village.code, user="zhangsan")
    again = asyncio.run(go())
    assert again.pulled == 0 and again.staff == 1, again
    assert "另有工作人员账户更新 1 个" in pulled_text({"pulled": again.pulled, "staff": again.staff})
