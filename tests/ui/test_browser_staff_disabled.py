"""A staff account the hub disables is refused at the station window after the next sync (issue 16), in
a real browser with axe checking every page (tests/ui/a11y.py).

The hub makes the account (`sanji hub add-staff`), the station syncs and the person signs in at the
window; the hub disables it (`sanji hub disable-staff`) and the station syncs again. The person's
open session ends at their very next request, which lands on the sign-in page saying the account was
disabled, and signing in again is refused with the Chinese reason. The station had no account of its
own: with its only account disabled the window still asks for a sign-in rather than opening up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from node.ui.signin import DISABLED_NOTICE
from tests.ui.conftest import District, sanji
from tests.ui.test_browser_staff_signin import Clock, Window

pytestmark = pytest.mark.slow

VILLAGE = "360802-T01-01"
PASSWORD = "zhangsan-from-hub-1"


@pytest.fixture
def window(district: District) -> Iterator[Window]:
    made = sanji(
        "hub", "add-staff", str(district.hub_dir), "--station", VILLAGE, "--user", "zhangsan", "--name", "张三",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert made == {"station": VILLAGE, "user": "zhangsan"}
    sanji("node", "sync", str(district.node_dir))
    with Window(district.node_dir, Clock()) as w:
        yield w


def sign_in(page: Any) -> None:
    page.fill("#user", "zhangsan")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("#signin-btn")


def test_a_disabled_account_is_refused_after_the_station_syncs(page: Any, window: Window, district: District) -> None:
    page.goto(window.url + "/applications")
    assert "/signin?next=" in page.url, "the hub's account arrived: the window asks who is there"
    sign_in(page)
    assert page.url == window.url + "/applications"
    assert page.locator("[data-staff]").inner_text() == "张三"

    out = sanji("hub", "disable-staff", str(district.hub_dir), "--station", VILLAGE, "--user", "zhangsan")
    assert out["enabled"] is False
    page.goto(window.url + "/")
    assert page.locator("[data-staff]").inner_text() == "张三", "the station has not synced yet"

    sanji("node", "sync", str(district.node_dir))
    page.goto(window.url + "/applications")
    assert "why=disabled" in page.url, "the open session ended at the first request after the sync"
    assert page.locator("#signin-notice").inner_text() == DISABLED_NOTICE
    sign_in(page)
    error = page.locator("#signin-error").inner_text()
    assert "已停用" in error and "联系管理员" in error
    assert "/signin" in page.url
    page.goto(window.url + "/")
    assert "/signin?next=" in page.url, "with its only account disabled the window stays closed"
