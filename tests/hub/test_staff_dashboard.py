"""The dashboard's station page lists the station's staff accounts made at the hub (issue 16): user,
name, role, enabled or not, the last change; never a hash or a grant key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import staff
from hub.app import HubConfig, create_app
from sync.staff_password import ScryptParams
from tests.ui.inproc import Pair, login

CHEAP = ScryptParams(n=2**10, r=8, p=1)
VILLAGE, TOWNSHIP = "360802-T01-01", "360802-T01"


pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


@pytest.fixture
def pair(tmp_path: Path, hub_database: str | None) -> Iterator[Pair]:
    p = Pair(tmp_path, database=hub_database)
    yield p
    p.close()


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(HubConfig(folder=pair.root / "hub")))) as c:
        yield c


async def test_the_station_page_lists_its_accounts_without_hashes(pair: Pair, client: TestClient[Any, Any]) -> None:
    for user, name, role in (("zhangsan", "张三", "staff"), ("wangzz", "王站长", "admin")):
        staff.add_staff(pair.hub, station=VILLAGE, user=user, name=name, role=role, password="口令-12345", params=CHEAP)
    staff.disable_staff(pair.hub, station=VILLAGE, user="zhangsan")
    staff.add_staff(
        pair.hub, station=TOWNSHIP, user="lisi", name="李四", role="staff", password="口令-12345", params=CHEAP
    )
    await login(client)

    html = await (await client.get(f"/stations/{VILLAGE}")).text()
    section = html[html.index('id="staff"') : html.index("回执（最近 50 批）")]
    assert "zhangsan" in section and "张三" in section and "已停用" in section
    assert "wangzz" in section and "王站长" in section and "站点管理员" in section and "启用" in section
    assert "李四" not in section, "another station's accounts are not on this page"
    assert "scrypt" not in html

    html = await (await client.get(f"/stations/{TOWNSHIP}")).text()
    assert "lisi" in html and "zhangsan" not in html


async def test_a_station_without_accounts_says_how_to_make_one(client: TestClient[Any, Any]) -> None:
    await login(client)
    html = await (await client.get(f"/stations/{VILLAGE}")).text()
    assert "区局尚未为该站点建立工作人员账户（sanji hub add-staff）" in html
