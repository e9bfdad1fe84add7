"""The dashboard's list of inspections across applications (``/inspections``) and its filters.

The district is built in-process on the shared ``World``, on a clock set 30 days back so that a task
assigned then (five working days to do it) is overdue by the time the served hub, which runs on the
wall clock like ``sanji hub serve``, shows the list. Three applications: one assigned and never
reported (overdue), one reported with a photo the hub still lacks, one reported with every file
uploaded. Every picture is generated here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import operations
from hub.app import HubConfig, create_app
from hub.inspection import assign
from hub.passwords import hash_password
from replica.ids import now_ms
from tests.conftest import FakeClock, World
from tests.ui.inproc import OPERATOR, PASSWORD
from tests.ui.inproc import login as sign_in
from tests.ui.test_http_hub_inspection import FIELD, ITEM, TOWNSHIP, VILLAGE, inspect, png, sha_of, upload

pytestmark = pytest.mark.slow

DAY_MS = 86_400_000


@dataclass
class Listed:
    world: World
    overdue: str  # assigned 30 days ago, no report
    missing: str  # reported; one photo never uploaded
    complete: str  # reported; every file uploaded
    waiting: bytes  # the photo the hub lacks
    citizen: list[str]  # every applicant's name, ID number, phone and address


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now_ms() - 30 * DAY_MS)


@pytest.fixture
def listed(world: World, tmp_path: Path) -> Listed:
    world.station(TOWNSHIP, "township")
    village = world.station(VILLAGE, "village", TOWNSHIP)
    field = world.station(FIELD, "field")
    with world.hub.store.transaction():
        world.hub.store.add_operator(OPERATOR, hash_password(PASSWORD), world.clock())
    app = world.accept(village, ITEM, address="兴桥镇塅口村9组", phone="13900000009")
    world.push(village)
    overdue = str(app["number"])
    operations.transition(world.hub, overdue, "under_review")
    assign(world.hub, overdue, FIELD)  # due five working days from 30 days ago
    world.pull(field)
    world.clock.advance(60_000)
    shown, waiting = png(12, 12, (0, 90, 0)), png(9, 9, (90, 0, 0))
    missing = inspect(
        world,
        village,
        field,
        tmp_path,
        result="rectify",
        photos=[shown, waiting],
        signature=None,
        gps="27.1167,114.9833,8",
        checks=[],
        findings=["需整改"],
    )
    upload(world, FIELD, shown)
    world.clock.advance(60_000)
    done, signature = png(14, 10, (0, 0, 90)), png(30, 10, (10, 10, 10))
    complete = inspect(
        world,
        village,
        field,
        tmp_path,
        result="pass",
        photos=[done],
        signature=signature,
        gps="27.1167,114.9833,8",
        checks=[],
        findings=["属实"],
    )
    upload(world, FIELD, done)
    upload(world, FIELD, signature)
    citizen = []
    for (app_id,) in world.hub.store.conn.execute("SELECT id FROM applications"):
        vals = world.hub.records.values("application", str(app_id))
        citizen += [str(vals[k]) for k in ("applicant_name", "applicant_id", "applicant_phone", "address")]
    return Listed(world, overdue, missing, complete, waiting, citizen)


@pytest.fixture
async def client(listed: Listed) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(HubConfig(folder=listed.world.root / "hub")))) as c:
        yield c


async def login(client: TestClient[Any, Any]) -> None:
    assert (await sign_in(client)).status == 303


def rows(html: str) -> dict[str, str]:
    """Each table row's markup by application number."""
    body = html[html.index('id="inspections"') :] if 'id="inspections"' in html else ""
    return {
        m.group(1): m.group(0) for m in re.finditer(r'<tr data-task="[^"]+" data-number="([^"]+)">.*?</tr>', body, re.S)
    }


async def test_the_list_needs_a_signed_in_operator(client: TestClient[Any, Any], listed: Listed) -> None:
    for path in ("/inspections", "/inspections?missing=1"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
        assert listed.missing not in await resp.text()
    resp = await client.get("/inspections?missing=1", allow_redirects=False)
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/login" and parse_qs(location.query)["next"] == ["/inspections?missing=1"]


async def test_every_inspection_is_listed_newest_first(client: TestClient[Any, Any], listed: Listed) -> None:
    await login(client)
    resp = await client.get("/inspections")
    assert resp.status == 200
    html = await resp.text()
    assert '<a href="/inspections" class="active">踏勘</a>' in html  # the header's nav, next to 办件
    assert html.index('href="/applications"') < html.index('href="/inspections" class="active"')
    found = rows(html)
    assert list(found) == [listed.complete, listed.missing, listed.overdue]
    late, short, full = found[listed.overdue], found[listed.missing], found[listed.complete]
    for number, row in found.items():
        assert f'<a href="/applications/{number}#inspections">{number}</a>' in row
        assert "最低生活保障申请" in row and f"{FIELD} 测试站" in row
    # Overdue: the due date in red; no report yet.
    assert 'data-due="overdue"' in late and re.search(r'<span class="badge red">\d{4}-\d\d-\d\d 已逾期</span>', late)
    assert 'data-task-status="assigned"' in late and "待踏勘" in late and 'data-result=""' in late
    assert 'data-missing="0"' in late and "齐全" not in late
    # A report with a photo still on the device.
    assert 'data-due="ok"' in short and 'data-task-status="done"' in short and "需整改" in short
    assert 'data-missing="1"' in short and '<span class="badge red">缺 1 个文件</span>' in short
    assert '<td class="num">2</td>' in short
    # A report whose files all arrived.
    assert "合格" in full and '<span class="badge green">齐全</span>' in full and '<td class="num">1</td>' in full
    # An operations list: nothing about the citizen.
    assert listed.citizen and not [c for c in listed.citizen if c in html]


async def test_the_filters_narrow_the_list(client: TestClient[Any, Any], listed: Listed) -> None:
    await login(client)
    expected = {
        "": [listed.complete, listed.missing, listed.overdue],
        "?open=1": [listed.overdue],
        "?overdue=1": [listed.overdue],
        "?missing=1": [listed.missing],
    }
    for query, numbers in expected.items():
        html = await (await client.get(f"/inspections{query}")).text()
        assert list(rows(html)) == numbers, query
        active = re.findall(
            r'<a href="(/inspections[^"]*)" data-filter="[a-z]+" class="active" aria-current="page">', html
        )
        assert active == [f"/inspections{query}"], query
    # An unknown filter shows everything.
    assert len(rows(await (await client.get("/inspections?missing=yes")).text())) == 3
    # Once the photo arrives, nothing is missing any more.
    upload(listed.world, FIELD, listed.waiting)
    html = await (await client.get("/inspections?missing=1")).text()
    assert rows(html) == {} and "所有踏勘报告的照片和签名均已上传到区局" in html
    assert 'data-missing="0"' in rows(await (await client.get("/inspections")).text())[listed.missing]
    assert sha_of(listed.waiting) not in html


async def test_the_overview_header_links_to_the_list(client: TestClient[Any, Any], listed: Listed) -> None:
    await login(client)
    html = await (await client.get("/")).text()
    assert '<a href="/inspections" class="">踏勘</a>' in html
