"""The window's 修改密码 page at the HTTP level (issue 16): what the browser's own checks would stop is
refused by the server too, a form without the page's CSRF token changes nothing, the person's other
window sessions end with the change while the one in use goes on, and a station without accounts has
no password to change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.server import create_app
from node.ui.keys import SESSIONS
from sync.staff_password import check_password
from tests.conftest import FakeClock
from tests.node.staff_helpers import STAFF_PASSWORD, with_staff
from tests.ui.inproc import Pair, post_account_form, staff_hash, window_sign_in

pytestmark = pytest.mark.slow

NEW = "zhangsan-new-pass-2"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(pair: Pair, clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(pair.root / "village", 3600.0, clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def sign_in(client: TestClient[Any, Any]) -> str:
    resp = await window_sign_in(client, "zhangsan", STAFF_PASSWORD)
    assert resp.status == 303
    return str(resp.cookies["sanji_staff"].value)


async def post(client: TestClient[Any, Any], **form: str) -> Any:
    return await post_account_form(client, "/account/password", **form)


async def test_the_server_refuses_what_the_browser_would_and_a_forged_form(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    with_staff(pair.st.db, pair.st.code)
    await sign_in(client)
    before = staff_hash(pair)
    resp = await post(client, current=STAFF_PASSWORD, new="short", again="short")
    assert resp.status == 400 and "密码太短" in await resp.text()
    resp = await post(client, current=STAFF_PASSWORD, new=STAFF_PASSWORD, again=STAFF_PASSWORD)
    assert resp.status == 400 and "不能与当前密码相同" in await resp.text()
    resp = await client.post(
        "/account/password", data={"current": STAFF_PASSWORD, "new": NEW, "again": NEW}, allow_redirects=False
    )
    assert resp.status == 403, "no CSRF token: refused"
    assert staff_hash(pair) == before


async def test_the_change_ends_the_persons_other_windows_and_keeps_this_one(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    with_staff(pair.st.db, pair.st.code)
    other = await sign_in(client)  # a window left open elsewhere on the PC
    mine = await sign_in(client)
    resp = await post(client, current=STAFF_PASSWORD, new=NEW, again=NEW)
    assert resp.status == 303 and resp.headers["Location"] == "/account/password?done=1"
    assert check_password(NEW, staff_hash(pair))
    done = await client.get("/account/password?done=1")
    assert "密码已修改" in await done.text()
    sessions = client.server.app[SESSIONS]
    assert mine in sessions and other not in sessions, "signed in with the old password elsewhere: ended"


async def test_a_station_without_accounts_has_no_password_to_change(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/account/password")
    assert resp.status == 404 and "尚未启用工作人员账户" in await resp.text()
