"""The window's 重置同事密码 form at the HTTP level (issue 16): an administrator resets a colleague's
password (their own password first, counted towards their lock-out), the colleague's window sessions
end, the colleague signs in with the new password and not the old; a colleague who is not an
administrator never sees the form and is refused if they post it anyway (403, ``not_admin``), and a
form without the page's CSRF token changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.server import create_app
from node.ui.keys import SESSIONS
from sync.staff_password import check_password
from tests.conftest import FakeClock
from tests.node.staff_helpers import ADMIN_PASSWORD, STAFF_PASSWORD, with_staff
from tests.ui.inproc import Pair, post_account_form, staff_hash, window_sign_in

pytestmark = pytest.mark.slow

NEW = "zhangsan-reset-by-admin"


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(pair.root / "village", 3600.0, clock=FakeClock())
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def sign_in(client: TestClient[Any, Any], user: str, password: str) -> int:
    return int((await window_sign_in(client, user, password)).status)


async def post_reset(client: TestClient[Any, Any], **form: str) -> Any:
    return await post_account_form(client, "/account/reset", **form)


async def test_an_administrator_resets_a_colleague_and_the_colleagues_windows_end(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    with_staff(pair.st.db, pair.st.code)
    assert await sign_in(client, "zhangsan", STAFF_PASSWORD) == 303  # a window zhangsan left open
    assert await sign_in(client, "admin", ADMIN_PASSWORD) == 303
    page = await (await client.get("/account/password")).text()
    assert "重置同事密码" in page and 'value="zhangsan"' in page and 'value="admin"' not in page.split("reset-user")[1]

    resp = await post_reset(client, user="zhangsan", current="not-the-admins", new=NEW, again=NEW)
    assert resp.status == 400 and "密码不正确" in await resp.text(), "the administrator's password is checked"
    resp = await post_reset(client, user="zhangsan", current=ADMIN_PASSWORD, new=NEW, again=NEW + "x")
    assert resp.status == 400 and "两次输入的新密码不一致" in await resp.text()
    resp = await post_reset(client, user="zhangsan", current=ADMIN_PASSWORD, new="short", again="short")
    assert resp.status == 400 and "密码太短" in await resp.text()
    assert check_password(STAFF_PASSWORD, staff_hash(pair))

    resp = await post_reset(client, user="zhangsan", current=ADMIN_PASSWORD, new=NEW, again=NEW)
    assert resp.status == 303 and resp.headers["Location"] == "/account/password?reset=1&who=zhangsan"
    assert check_password(NEW, staff_hash(pair)) and not check_password(STAFF_PASSWORD, staff_hash(pair))
    done = await (await client.get(resp.headers["Location"])).text()
    assert "已重设同事 zhangsan 的密码" in done
    users = [s.user for s in client.server.app[SESSIONS].values()]
    assert users == ["admin"], "zhangsan's window signed in with the old password: ended"

    assert await sign_in(client, "zhangsan", STAFF_PASSWORD) == 401
    assert await sign_in(client, "zhangsan", NEW) == 303


async def test_a_colleague_who_is_not_an_administrator_is_refused_and_a_forged_form_changes_nothing(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    with_staff(pair.st.db, pair.st.code)
    before = staff_hash(pair, "admin")
    assert await sign_in(client, "zhangsan", STAFF_PASSWORD) == 303
    page = await (await client.get("/account/password")).text()
    assert "reset-form" not in page, "the form is for administrators only"
    resp = await post_reset(client, user="admin", current=STAFF_PASSWORD, new=NEW, again=NEW)
    assert resp.status == 403 and "只有本站管理员可以重设同事的密码" in await resp.text()
    assert await sign_in(client, "admin", ADMIN_PASSWORD) == 303
    resp = await client.post(
        "/account/reset",
        data={"user": "zhangsan", "current": ADMIN_PASSWORD, "new": NEW, "again": NEW},
        allow_redirects=False,
    )
    assert resp.status == 403, "no CSRF token: refused"
    assert staff_hash(pair, "admin") == before and check_password(STAFF_PASSWORD, staff_hash(pair))
