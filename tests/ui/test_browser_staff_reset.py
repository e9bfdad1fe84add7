"""重置同事密码 at the station window in a real browser (issue 16): the administrator picks a colleague,
types their own password and the colleague's new one twice; a wrong own password is refused on the
page; after the reset the colleague's old password is refused at sign-in and the new one signs in, and
the colleague's own 修改密码 page has no reset form. axe checks every page (tests/ui/a11y.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from node import staff_accounts
from node.station import Station
from replica.ids import now_ms
from tests.ui.conftest import District, sanji
from tests.ui.test_browser_staff_signin import Clock, Window

pytestmark = pytest.mark.slow

ADMIN_PW = "wang-window-admin-1"
OLD = "zhangsan-window-1"
NEW = "zhangsan-reset-2"


@pytest.fixture
def window(district: District) -> Iterator[Window]:
    folder = str(district.node_dir)
    out = sanji("node", "add-admin", folder, "--user", "wang", "--name", "王站长", stdin=ADMIN_PW + "\n")
    assert out["user"] == "wang"
    st = Station(district.node_dir)
    try:
        admin = staff_accounts.sign_in(st.db, station=st.code, user="wang", password=ADMIN_PW, now_ms=now_ms())
        staff_accounts.add_staff(
            st.db, station=st.code, user="zhangsan", name="张三", password=OLD, role="staff", by=admin, now_ms=now_ms()
        )
        admin.end()
    finally:
        st.close()
    with Window(district.node_dir, Clock()) as w:
        yield w


def sign_in(page: Any, user: str, password: str) -> None:
    page.fill("#user", user)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#signin-btn")


def sign_out(page: Any, window: Window) -> None:
    with page.expect_navigation():
        page.click("#signout-btn")
    page.goto(window.url + "/")


def reset(page: Any, own: str) -> None:
    page.select_option("#reset-user", "zhangsan")
    page.fill("#reset-current", own)
    page.fill("#reset-new", NEW)
    page.fill("#reset-again", NEW)
    with page.expect_navigation():
        page.click("#reset-btn")


def test_the_administrator_resets_a_colleague_who_then_signs_in_with_the_new_password(
    page: Any, window: Window
) -> None:
    page.goto(window.url + "/")
    sign_in(page, "wang", ADMIN_PW)
    page.click("#password-link")
    page.wait_for_url(window.url + "/account/password")
    assert page.locator("#reset-heading").inner_text() == "重置同事密码"
    assert page.get_by_label("同事", exact=True).count() == 1, "the fields are labelled"

    reset(page, "not-wangs-password")
    assert "密码不正确" in page.locator("#reset-error").inner_text()
    reset(page, ADMIN_PW)
    assert "已重设同事 zhangsan 的密码" in page.locator("#reset-notice").inner_text()

    sign_out(page, window)
    sign_in(page, "zhangsan", OLD)
    assert "密码不正确" in page.locator("#signin-error").inner_text()
    sign_in(page, "zhangsan", NEW)
    assert page.locator("[data-staff]").inner_text() == "张三"
    page.goto(window.url + "/account/password")
    assert page.locator("#reset-form").count() == 0, "only an administrator sees the form"
