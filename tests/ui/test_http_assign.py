"""A township assigns an on-site inspection (现场踏勘) from an application's page, at the HTTP level and
offline: the form is offered only to the deciding centre while the application is under review and the
item requires an inspection; a POST assigns it (task written, status inspecting, the time limit
paused); refusals show the page again with the reason and the choices kept, writing nothing; a village
never gets the form; the tasks and the report the station holds are listed on the page.

Built in-process on the shared ``World`` (tests/conftest.py); the UI app's station runs on the World's
fake clock (Monday 2 March 2026), so the default due date is known: five working days later."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import operations
from node import commands, inspection
from node.assignment import assign
from node.server import create_app
from node.station import Station
from node.ui.keys import STATION
from replica.inspection import tasks_of
from sync.inspection import PAUSED_LABEL
from sync.workflow import Move, Status, allowed_moves, may_move
from tests.conftest import World
from tests.ui.images import png
from tests.ui.inproc import DEAD_HUB, csrf_of

pytestmark = pytest.mark.slow

TOWNSHIP, VILLAGE, FIELD = "360802-T01", "360802-T01-05", "360802-F01"
ITEM = "360802-0006"  # 临时救助申请: decided by the township, on-site inspection required
NO_INSPECTION = "360802-0009"  # 高龄津贴申领: decided by the township, no inspection
DISTRICT_ITEM = "360802-0004"  # 最低生活保障申请: inspection required, but the district decides it
DEFAULT_DUE = "2026-03-09"  # Monday 2 March 2026 + 5 working days


@dataclass
class Scene:
    world: World
    township: Station
    village: Station
    field: Station
    number: str  # ITEM, accepted at the village, under review at the township

    def app(self, st: Station | None = None) -> dict[str, Any]:
        st = st or self.township
        return dict(st.records.values("application", commands.find(st, self.number)))

    def tasks(self, st: Station | None = None) -> list[tuple[str, dict[str, object]]]:
        st = st or self.township
        return tasks_of(st.conn, st.records, commands.find(st, self.number))


@pytest.fixture
def scene(make_world: Callable[..., World]) -> Scene:
    world = make_world((TOWNSHIP, "township", ""), (VILLAGE, "village", TOWNSHIP), (FIELD, "field", ""))
    township, village, field = world.get(TOWNSHIP), world.get(VILLAGE), world.get(FIELD)
    app = world.accept(village, ITEM, address="兴桥镇塅口村5组", phone="13900000006")
    world.push(village)
    world.pull(township)  # brings the application and the district's field devices
    assert township.meta.get("field_devices") == [FIELD]
    commands.transition(township, str(app["number"]), "under_review")
    world.push(township)
    world.pull(village)  # the village sees the review too
    for st in (township, village, field):
        with st.transaction():
            st.meta.set("hub_url", DEAD_HUB)  # offline throughout
    return Scene(world, township, village, field, str(app["number"]))


@contextlib.asynccontextmanager
async def ui(scene: Scene, st: Station) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(st.folder, 3600.0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        app[STATION].clock = scene.world.clock  # the page's "today" is the World's
        yield client


async def get(client: TestClient[Any, Any], number: str, query: str = "") -> str:
    resp = await client.get(f"/applications/{number}{query}")
    assert resp.status == 200
    return await resp.text()


def options(html: str) -> list[tuple[str, bool]]:
    """(value, selected) of each inspector the form offers."""
    m = re.search(r'<select id="inspector".*?</select>', html, re.S)
    assert m, "no inspector select on the page"
    return [(v, bool(sel)) for v, sel in re.findall(r'<option value="([^"]*)"\s*(selected)?', m.group(0))]


def due_value(html: str) -> str:
    m = re.search(r'<input type="date" id="due-date" name="due" value="([^"]*)"', html)
    assert m, "no due date field on the page"
    return m.group(1)


def assign_error(html: str) -> str:
    m = re.search(r'id="assign-error" role="alert">([^<]*)<', html)
    assert m, "no assignment error on the page"
    return m.group(1)


async def post(client: TestClient[Any, Any], number: str, **data: str) -> tuple[int, str, str]:
    resp = await client.post(f"/applications/{number}/inspect", data=data, allow_redirects=False)
    return resp.status, resp.headers.get("Location", ""), await resp.text()


def changes(st: Station) -> int:
    return int(st.conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0])


async def test_the_form_is_offered_only_to_the_decider_during_review(scene: Scene) -> None:
    world, township = scene.world, scene.township
    # The plain move to inspecting is in the table and the decider's rights, so the page must filter it.
    assert Move.INSPECT in allowed_moves(Status.UNDER_REVIEW, immediate=False)
    assert may_move("decider", Move.INSPECT, immediate=False)
    accepted = str(world.accept(scene.village, ITEM)["number"])  # still at the window
    plain = str(world.accept(scene.village, NO_INSPECTION)["number"])
    world.push(scene.village)
    world.pull(township)
    commands.transition(township, plain, "under_review")
    district = str(world.accept(township, DISTRICT_ITEM)["number"])  # the township's own window; the district decides
    world.push(township)
    operations.transition(world.hub, district, "under_review")
    world.pull(township)
    assert {a["number"]: a["status"] for a in commands.applications(township)}[district] == "under_review"
    async with ui(scene, township) as client:
        html = await get(client, scene.number)
        assert 'id="assign-form"' in html and "安排现场踏勘" in html
        assert options(html) == [(FIELD, False)]
        assert due_value(html) == "" and f"不填则为 5 个工作日后（{DEFAULT_DUE}）" in html
        assert 'min="2026-03-02"' in html
        assert 'data-move="inspect"' not in html and 'value="inspecting"' not in html
        assert 'data-move="approve"' in html  # the decider's other moves are there
        assert 'id="inspections"' not in html  # no task yet
        for other in (accepted, plain, district):
            page = await get(client, other)
            assert 'id="assign-form"' not in page and "安排现场踏勘" not in page, other
            assert 'data-move="inspect"' not in page

        with township.transaction():
            township.meta.set("field_devices", [])  # a centre whose feed has named no device yet
        html = await get(client, scene.number)
        assert 'id="assign-form"' not in html
        assert 'id="no-devices"' in html and "尚未获知踏勘设备，请先联网同步" in html


async def test_a_post_assigns_pauses_and_sends_the_task_at_the_next_sync(scene: Scene) -> None:
    township = scene.township
    async with ui(scene, township) as client:
        html = await get(client, scene.number)
        status, location, _ = await post(client, scene.number, csrf=csrf_of(html), inspector=FIELD, due="")
        assert (status, location) == (303, f"/applications/{scene.number}?done=inspect")
        [(task_id, task)] = scene.tasks()
        assert (task["inspector"], task["due"], task["status"]) == (FIELD, DEFAULT_DUE, "assigned")
        assert task["address"] == "兴桥镇塅口村5组"
        app = scene.app()
        assert (app["status"], app["paused"]) == ("inspecting", True)

        html = await get(client, scene.number, "?done=inspect")
        assert "已安排踏勘，任务将在下次同步时送达踏勘设备；办理时限暂停" in html
        assert 'data-status="inspecting"' in html and f"data-paused>{PAUSED_LABEL}<" in html
        row = re.search(rf'<tr data-task="{task_id}" data-status="assigned">.*?</tr>', html, re.S)
        assert row and FIELD in row.group(0) and DEFAULT_DUE in row.group(0) and "待踏勘" in row.group(0)
        assert 'id="assign-form"' not in html  # one open task at a time
        assert 'value="inspecting"' not in html

        # A second submit from a stale page is refused by the command, said on top, and writes nothing.
        before = changes(township)
        status, _, html = await post(client, scene.number, csrf=csrf_of(html), inspector=FIELD, due="")
        assert status == 400 and "未能安排踏勘" in html and "还没有报告" in html
        assert changes(township) == before and len(scene.tasks()) == 1

    # The task goes up with the next sync and reaches the device.
    acks = scene.world.push(township)
    assert sum(a.quarantined for a in acks) == 0
    scene.world.pull(scene.field)
    assert [t["task"] for t in inspection.tasks(scene.field)] == [task_id]


async def test_refusals_keep_the_choices_and_say_why(scene: Scene) -> None:
    township = scene.township
    before = changes(township)
    async with ui(scene, township) as client:
        token = csrf_of(await get(client, scene.number))

        # A code that is not a field device (a hand-made form, or a device dropped by a sync meanwhile).
        status, _, html = await post(client, scene.number, csrf=token, inspector=VILLAGE, due="2026-03-20")
        assert status == 400
        assert "未能安排踏勘" in assign_error(html) and "不是本区的踏勘设备" in assign_error(html)
        assert options(html) == [(FIELD, False), (VILLAGE, True)]
        assert "不在已知的踏勘设备中" in html and due_value(html) == "2026-03-20"

        status, _, html = await post(client, scene.number, csrf=token, inspector=FIELD, due="2020-01-01")
        assert status == 400 and "已经过了" in assign_error(html)
        assert options(html) == [(FIELD, True)] and due_value(html) == "2020-01-01"

        status, _, html = await post(client, scene.number, csrf=token, inspector=FIELD, due="3月20日")
        assert status == 400 and "YYYY-MM-DD" in assign_error(html) and due_value(html) == "3月20日"

        status, _, html = await post(client, scene.number, csrf=token, inspector="", due="2026-03-20")
        assert status == 400 and assign_error(html) == "请选择踏勘设备。" and due_value(html) == "2026-03-20"

        status, _, html = await post(client, scene.number, inspector=FIELD, due="")  # no CSRF token
        assert status == 403 and "安全校验未通过" in html
        status, _, _ = await post(client, scene.number, csrf="forged", inspector=FIELD, due="")
        assert status == 403

        status, _, html = await post(client, "360802-T01-05-000000-9999", csrf=token, inspector=FIELD, due="")
        assert status == 404

    assert changes(township) == before and scene.tasks() == []
    assert (scene.app()["status"], scene.app().get("paused")) == ("under_review", None)


async def test_a_village_never_gets_the_form_but_sees_the_inspection(scene: Scene) -> None:
    world, village = scene.world, scene.village
    assert scene.app(village)["status"] == "under_review"
    async with ui(scene, village) as client:
        html = await get(client, scene.number)
        assert 'data-status="under_review"' in html
        assert 'id="assign-form"' not in html and "安排现场踏勘" not in html and 'id="no-devices"' not in html
        assert 'data-move="inspect"' not in html
        before = changes(village)
        status, _, html = await post(client, scene.number, csrf=csrf_of(html), inspector=FIELD, due="")
        assert status == 400 and "本站不决定事项" in html  # the command refuses; said on top
        assert changes(village) == before and scene.tasks(village) == []

    task_id = str(assign(scene.township, scene.number, FIELD)["task"])
    world.push(scene.township)
    world.pull(village)
    async with ui(scene, village) as client:
        html = await get(client, scene.number)
        assert 'id="assign-form"' not in html and "安排现场踏勘" not in html
        assert f'<tr data-task="{task_id}" data-status="assigned">' in html
        assert f"data-paused>{PAUSED_LABEL}<" in html


async def test_the_report_is_shown_with_its_result_flag_and_photo_count(scene: Scene, tmp_path: Path) -> None:
    world, township, field = scene.world, scene.township, scene.field
    task_id = str(assign(township, scene.number, FIELD, "2026-03-06")["task"])
    world.push(township)
    world.pull(field)
    photos = []
    for i in range(3):
        path = tmp_path / f"IMG_{i}.png"
        path.write_bytes(png(32, 24, (40 * i, 90, 60)))
        photos.append(path)
    world.clock.advance(86_400_000)
    inspection.report(
        field,
        task_id,
        result="rectify",
        findings=["屋顶漏雨", "需整改后复核"],
        gps="27.1167,114.9833,900",
        photos=photos,
    )  # 900 m: flagged as imprecise, kept
    world.push(field)
    world.pull(township)
    world.pull(scene.village)
    for st in (township, scene.village):
        async with ui(scene, st) as client:
            html = await get(client, scene.number)
            row = re.search(rf'<tr data-task="{task_id}" data-status="done">.*?</tr>', html, re.S)
            assert row, st.code
            text = row.group(0)
            assert "已提交报告" in text and "2026-03-06" in text and FIELD in text
            assert 'data-result="rectify"' in text and ">需整改<" in text
            assert "屋顶漏雨\n需整改后复核" in text
            assert "data-gps-flag" in text and "定位精度差" in text
            assert "照片 3 张（存于区局）" in text
            assert "/blobs/" not in html  # the station holds no photos; nothing links to them
            # Every task is reported: the decider may send the inspector again (after 需整改), the village not.
            assert ('id="assign-form"' in html) is (st is township)
            if st is township:
                assert "再次安排现场踏勘" in html


# Regressions: the history once described a task's status and a report's result with their raw codes.
def test_history_says_a_task_status_in_words() -> None:
    from present.webui import describe

    lines = describe("task", {"inspector": FIELD, "due": DEFAULT_DUE, "status": "assigned"})
    lines += describe("task", {"status": "done"})
    assert not any("assigned" in line or "done" in line for line in lines), lines


def test_history_says_a_report_result_in_words() -> None:
    from present.webui import describe

    lines = describe("report", {"result": "rectify", "findings": "屋顶漏雨"})
    assert any(line.endswith("需整改") for line in lines) and not any("rectify" in line for line in lines), lines


async def test_the_deciding_centre_approves_without_a_report_only_with_a_reason(scene: Scene) -> None:
    # Issue 14: 准予许可 of an item needing inspection, before any report, asks for the override's reason.
    async with ui(scene, scene.township) as client:
        html = await get(client, scene.number)
        assert 'id="override-reason"' in html and 'data-move="approve"' in html
        before = changes(scene.township)
        url = f"/applications/{scene.number}/transition"
        resp = await client.post(url, data={"to": "approved", "csrf": csrf_of(html)})
        page = await resp.text()
        assert resp.status == 409 and "需现场踏勘，尚无踏勘报告，不能准予许可" in page
        assert changes(scene.township) == before and scene.app()["status"] == "under_review"
        data = {"to": "approved", "override_reason": "申请人已搬离，经村委会书面证明", "csrf": csrf_of(html)}
        resp = await client.post(url, data=data, allow_redirects=False)
        assert resp.status == 303
        assert scene.app()["status"] == "approved"
        history = await get(client, scene.number)
        assert "未经现场踏勘准予许可（已说明理由）" in history and "申请人已搬离，经村委会书面证明" in history
