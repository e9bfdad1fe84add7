"""修改密码 at the station window in a real browser (issue 16: "password change works as on the
dashboard"): the signed-in person changes their password, signs out, the old password is refused, the
new one signs in, and the applicant accepted before the change still opens in full (the data key was
wrapped afresh, not replaced). A wrong current password is refused on the page and counted towards
the lock-out, as at sign-in. axe checks every page, the password page included (tests/ui/a11y.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import ITEM_IMMEDIATE, District, make_id, sanji
from tests.ui.test_browser_staff_signin import Clock, Window, sign_in

pytestmark = pytest.mark.slow

OLD = "zhangsan-window-1"
NEW = "zhangsan-window-2"
ID_NUMBER = make_id(505)
NAME = "测试申请人戊"


@pytest.fixture
def window(district: District) -> Iterator[Window]:
    out = sanji("node", "add-admin", str(district.node_dir), "--user", "zhangsan", "--name", "张三", stdin=OLD + "\n")
    assert out["user"] == "zhangsan"
    with Window(district.node_dir, Clock()) as w:
        yield w


def change(page: Any, current: str, new: str, again: str | None = None) -> None:
    page.fill("#current", current)
    page.fill("#new", new)
    page.fill("#again", new if again is None else again)
    with page.expect_navigation():
        page.click("#password-btn")


def accept_one(page: Any, window: Window) -> str:
    page.goto(window.url + f"/accept/item/{ITEM_IMMEDIATE}")
    page.fill("#name", NAME)
    page.fill("#id_number", ID_NUMBER)
    page.fill("#phone", "13907960505")
    page.fill("#address", "兴桥镇岗塘村5组")
    for row in page.locator("tr[data-material]").all():
        row.locator("label", has_text="已收取").click()
    with page.expect_navigation():
        page.click("#submit")
    return str(page.url)


def test_change_the_password_then_the_old_one_is_refused_and_the_new_one_opens_everything(
    page: Any, window: Window
) -> None:
    page.goto(window.url + "/")
    sign_in(page, OLD)
    receipt = accept_one(page, window)
    assert NAME in page.locator("#receipt").inner_text()  # sealed at rest, shown to the signed-in person

    page.click("#password-link")
    page.wait_for_url(window.url + "/account/password")
    assert page.locator("h1").inner_text() == "修改密码"
    change(page, OLD, NEW, again=NEW + "x")
    assert "两次输入的新密码不一致" in page.locator("#password-error").inner_text()
    change(page, "not-the-password", NEW)
    assert "密码不正确" in page.locator("#password-error").inner_text()
    assert "再错 4 次将暂停登录" in page.locator("#password-error").inner_text()  # counted as a failed sign-in
    page.fill("#new", "short")
    assert page.locator("#new").evaluate("e => e.validity.tooShort"), "the browser asks for 8 characters first"

    change(page, OLD, NEW)
    assert "密码已修改" in page.locator("#password-notice").inner_text()
    assert page.locator("[data-staff]").inner_text() == "张三"  # this window stays signed in

    with page.expect_navigation():
        page.click("#signout-btn")
    page.goto(window.url + "/")
    sign_in(page, OLD)
    assert "密码不正确" in page.locator("#signin-error").inner_text()
    sign_in(page, NEW)
    assert page.locator("[data-staff]").inner_text() == "张三"
    page.goto(receipt)
    assert NAME in page.locator("#receipt").inner_text(), "sealed before the change, it opens after"
