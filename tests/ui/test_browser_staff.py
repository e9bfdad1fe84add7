"""The hub dashboard's station page with staff accounts on it (issue 16), through axe like every other
page: an enabled administrator and a disabled member, made with `sanji hub add-staff` as an operator
would, shown with their state and never with a hash."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import District, sanji
from tests.ui.test_browser_a11y import visit
from tests.ui.test_browser_hub import login

pytestmark = pytest.mark.slow

VILLAGE = "360802-T01-01"


def test_the_station_page_lists_its_staff_and_passes_axe(page: Any, district: District) -> None:
    hub = str(district.hub_dir)
    sanji(
        "hub",
        "add-staff",
        hub,
        "--station",
        VILLAGE,
        "--user",
        "wangzz",
        "--name",
        "王站长",
        "--role",
        "admin",
        stdin="站长口令-2026\n",
    )
    sanji("hub", "add-staff", hub, "--station", VILLAGE, "--user", "zhangsan", "--name", "张三", stdin="zs-口令-2026\n")
    sanji("hub", "disable-staff", hub, "--station", VILLAGE, "--user", "zhangsan")
    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    visit(page, f"{district.hub_url}/stations/{VILLAGE}")
    rows = page.locator("#staff tbody tr")
    assert rows.count() == 2
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(2)] == ["wangzz", "zhangsan"]
    assert "已停用" in rows.nth(1).inner_text() and "站点管理员" in rows.nth(0).inner_text()
    assert "scrypt" not in page.content()
