"""Inspections carry their author like accept and moves do (issue 16): the township's assignment and the
field device's report, made from the window by the signed-in person or from the CLI with `--staff`,
name that person in the changes they write, and the CLI refuses without `--staff` once the station
has accounts (`staff_required`), writing nothing.

Built in-process on the shared ``World`` (tests/conftest.py), offline; applicants are generated."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import operations
from hub.inspection import assign as hub_assign
from node import commands
from node.server import create_app
from node.station import Station
from node.ui.keys import STATION
from tests.conftest import World
from tests.node.staff_helpers import STAFF_PASSWORD, with_staff
from tests.ui.inproc import DEAD_HUB, csrf_of

pytestmark = pytest.mark.slow

TOWNSHIP, VILLAGE, FIELD = "360802-T01", "360802-T01-05", "360802-F01"
TOWNSHIP_ITEM = "360802-0006"  # 临时救助申请: the township decides it, on-site inspection required
DISTRICT_ITEM = "360802-0004"  # 最低生活保障申请: the district assigns its inspection
REPORT = {"result": "pass", "findings": "住房情况与申报一致", "lat": "27.116700", "lon": "114.983300", "acc": "12"}


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    world = make_world((TOWNSHIP, "township", ""), (VILLAGE, "village", TOWNSHIP), (FIELD, "field", ""))
    for st in world.stations:
        with st.transaction():
            st.meta.set("hub_url", DEAD_HUB)  # offline throughout
    return world


def under_review_at_township(world: World) -> str:
    township, village = world.get(TOWNSHIP), world.get(VILLAGE)
    number = str(world.accept(village, TOWNSHIP_ITEM, address="兴桥镇塅口村5组")["number"])
    world.push(village)
    world.pull(township)
    commands.transition(township, number, "under_review")
    return number


def task_at_field(world: World) -> str:
    village, field = world.get(VILLAGE), world.get(FIELD)
    number = str(world.accept(village, DISTRICT_ITEM, address="兴桥镇塅口村3组")["number"])
    world.push(village)
    operations.transition(world.hub, number, "under_review")
    task = str(hub_assign(world.hub, number, FIELD)["task"])
    world.pull(field)
    return task


def authors(st: Station, entity: str) -> list[str]:
    rows = st.conn.execute("SELECT author FROM changes WHERE origin=? AND entity=? ORDER BY seq", (st.code, entity))
    return [str(a) for (a,) in rows]


def cli(argv: list[str], stdin: str = "") -> tuple[int, dict[str, Any]]:
    from sanji.cli import main

    out, old = io.StringIO(), sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main([*argv, "--json"])
    finally:
        sys.stdin = old
    return code, json.loads(out.getvalue() or "{}")


def reopen(world: World, st: Station) -> Station:
    """The CLI opened the folder on its own; read what it wrote through a fresh Station."""
    fresh = Station(st.folder, clock=world.clock)
    world.stations.append(fresh)
    return fresh


def test_the_cli_inspect_and_report_name_the_staff_member(world: World) -> None:
    number = under_review_at_township(world)
    task = task_at_field(world)
    township, field = world.get(TOWNSHIP), world.get(FIELD)
    with_staff(township.db, township.code)
    with_staff(field.db, field.code)

    inspect = ["node", "inspect", str(township.folder), number, "--inspector", FIELD]
    code, out = cli(inspect)
    assert code == 2 and out["error"] == "staff_required"
    assert authors(township, "task") == [], "refused before anything was written"
    code, out = cli([*inspect, "--staff", "zhangsan"], STAFF_PASSWORD + "\n")
    assert code == 0, out
    township = reopen(world, township)
    assert authors(township, "task") == ["zhangsan"]
    assert authors(township, "application")[-1] == "zhangsan", "the move to inspecting names them too"

    report = ["node", "report", str(field.folder), task, "--result", "pass", "--finding", REPORT["findings"]]
    code, out = cli(report)
    assert code == 2 and out["error"] == "staff_required"
    code, out = cli([*report, "--staff", "zhangsan"], "not-the-password\n")
    assert code == 2 and out["error"] == "wrong_password"
    assert authors(field, "report") == []
    code, out = cli([*report, "--staff", "zhangsan"], STAFF_PASSWORD + "\n")
    assert code == 0, out
    field = reopen(world, field)
    assert authors(field, "report") == ["zhangsan"] and authors(field, "task") == ["zhangsan"]


@contextlib.asynccontextmanager
async def signed_in(world: World, st: Station) -> AsyncIterator[TestClient[Any, Any]]:
    with_staff(st.db, st.code)
    app = create_app(st.folder, 3600.0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        app[STATION].clock = world.clock  # the page's "today" is the World's
        page = await client.get("/signin")
        form = {"csrf": csrf_of(await page.text()), "user": "zhangsan", "password": STAFF_PASSWORD, "next": "/"}
        resp = await client.post("/signin", data=form, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        yield client


async def test_the_windows_assign_and_report_forms_name_the_signed_in_person(world: World) -> None:
    number = under_review_at_township(world)
    task = task_at_field(world)
    township, field = world.get(TOWNSHIP), world.get(FIELD)

    async with signed_in(world, township) as client:
        page = await client.get(f"/applications/{number}")
        data = {"csrf": csrf_of(await page.text()), "inspector": FIELD, "due": ""}
        resp = await client.post(f"/applications/{number}/inspect", data=data, allow_redirects=False)
        assert resp.status == 303, await resp.text()
    assert authors(township, "task") == ["zhangsan"]
    assert authors(township, "application")[-1] == "zhangsan"

    async with signed_in(world, field) as client:
        page = await client.get(f"/tasks/{task}")
        resp = await client.post(
            f"/tasks/{task}/report", data={"csrf": csrf_of(await page.text()), **REPORT}, allow_redirects=False
        )
        assert resp.status == 303, await resp.text()
    assert authors(field, "report") == ["zhangsan"] and authors(field, "task") == ["zhangsan"]
