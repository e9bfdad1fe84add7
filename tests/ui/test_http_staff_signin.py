"""Sign-in at the station window, at the HTTP level with the station's clock in the test's hands (issue
16): a station with accounts sends every page to the sign-in page, a good sign-in opens the window
and names the author of what it writes, an idle session locks after the configured minutes, sign-out
ends it, and a station without accounts keeps its open window. Applicants are generated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.server import create_app
from tests.conftest import FakeClock
from tests.node.staff_helpers import ADMIN_PASSWORD, STAFF_PASSWORD, with_staff
from tests.ui.conftest import ITEM_PROMISED, make_id
from tests.ui.inproc import Pair, csrf_of, window_sign_in

pytestmark = pytest.mark.slow

FORM_0004 = {"m0_0": "submitted", "m0_1": "submitted", "m0_2": "deferred", "m0_3": "submitted"}
MINUTE = 60_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(pair: Pair, clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(pair.root / "village", 3600.0, clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def applicant() -> dict[str, str]:
    return {
        "name": "测试申请人丙",
        "id_number": make_id(403),
        "phone": "13907960403",
        "address": "岗塘村3组",
        "note": "",
    }


async def test_a_station_without_accounts_keeps_its_open_window(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 200 and "退出登录" not in await resp.text()


async def test_sign_in_names_the_author_and_the_receipt_names_the_accepting_person(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    with_staff(pair.st.db, pair.st.code)
    resp = await client.get("/accept", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/signin?next=%2Faccept"
    # A wrong password: the page says so and keeps the user name; nothing is open yet.
    resp = await window_sign_in(client, "zhangsan", "not-the-password")
    html = await resp.text()
    assert resp.status == 401 and "密码不正确" in html and 'value="zhangsan"' in html
    assert (await client.get("/applications", allow_redirects=False)).status == 303

    resp = await window_sign_in(client, "zhangsan", STAFF_PASSWORD, then="/accept")
    assert resp.status == 303 and resp.headers["Location"] == "/accept"
    cookie = resp.cookies["sanji_staff"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    page = await client.get("/accept")
    text = await page.text()
    assert page.status == 200 and "张三" in text and "退出登录" in text
    resp = await client.post(
        f"/accept/item/{ITEM_PROMISED}",
        data={"csrf": csrf_of(text), **applicant(), **FORM_0004},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert [r[0] for r in pair.st.conn.execute("SELECT author FROM changes")] == ["zhangsan"]
    receipt = await (await client.get(resp.headers["Location"])).text()
    assert '受理人：<span id="accepted-by">张三（zhangsan）</span>' in receipt

    # The reveal audit records the signed-in person whatever name the form carries.
    number = pair.st.conn.execute("SELECT number FROM applications").fetchone()[0]
    detail = await (await client.get(f"/applications/{number}")).text()
    assert "<th>经办人</th>" in detail and "张三（zhangsan）" in detail
    resp = await client.post(
        f"/applications/{number}/reveal", data={"csrf": csrf_of(detail), "staff": "王芳", "reason": "核对身份证原件"}
    )
    assert make_id(403) in await resp.text()
    assert pair.st.conn.execute("SELECT staff, action FROM ui_audit").fetchall() == [("zhangsan", "reveal")]


async def test_an_idle_session_locks_and_sign_out_ends_it(
    client: TestClient[Any, Any], pair: Pair, clock: FakeClock
) -> None:
    with_staff(pair.st.db, pair.st.code)
    (pair.root / "village" / "staff.json").write_text(json.dumps({"idle_minutes": 2}), "utf-8")
    assert (await window_sign_in(client, "admin", ADMIN_PASSWORD)).status == 303
    clock.advance(MINUTE + 59_000)  # just inside two minutes: still open, and this request counts as use
    assert (await client.get("/applications", allow_redirects=False)).status == 200
    clock.advance(MINUTE + 59_000)
    assert (await client.get("/", allow_redirects=False)).status == 200
    clock.advance(2 * MINUTE + 1)  # idle longer than the limit: locked
    resp = await client.get("/applications", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/signin?next=%2Fapplications&why=locked"
    page = await client.get(resp.headers["Location"])
    assert "因长时间未操作，登录已锁定" in await page.text()
    assert (await client.get("/", allow_redirects=False)).status == 303  # still locked: a new sign-in is needed

    assert (await window_sign_in(client, "admin", ADMIN_PASSWORD)).status == 303
    home = await (await client.get("/")).text()
    resp = await client.post("/signout", data={"csrf": csrf_of(home)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/signin?why=out"
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_a_disabled_account_is_refused_at_the_window(client: TestClient[Any, Any], pair: Pair) -> None:
    from node import staff_accounts
    from tests.node.staff_helpers import T0

    admin = with_staff(pair.st.db, pair.st.code)
    staff_accounts.disable(pair.st.db, station=pair.st.code, user="zhangsan", by=admin, now_ms=T0)
    resp = await window_sign_in(client, "zhangsan", STAFF_PASSWORD)
    assert resp.status == 401 and "已停用" in await resp.text()


async def test_the_dashboard_history_names_the_staff_member(hub_client: TestClient[Any, Any], pair: Pair) -> None:
    from node import commands
    from tests.node.staff_helpers import sign_in as staff_sign_in
    from tests.ui.inproc import login

    with_staff(pair.st.db, pair.st.code)
    # A station with a data key seals personal values as it writes: it needs the signed-in session.
    pair.st.session = staff_sign_in(pair.st.db, "zhangsan", STAFF_PASSWORD, now_ms=pair.st.clock(), code=pair.st.code)
    item = pair.st.catalogue().catalogue.items["360802-0001"]
    out = commands.accept(
        pair.st,
        commands.Application(
            item=item.code,
            name="测试申请人己",
            id_number=make_id(405),
            phone="13907960405",
            submitted=[m.name for m in item.materials if m.required],
        ),
        author="zhangsan",
    )
    pair.push()
    await login(hub_client)
    html = await (await hub_client.get(f"/applications/{out['number']}")).text()
    assert "<th>经办人</th>" in html and "<td>zhangsan</td>" in html
