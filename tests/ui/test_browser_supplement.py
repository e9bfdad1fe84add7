"""补交材料 in a real browser (issue 14, item 1). At the station: an approved application whose photo was
deferred (容缺) shows a form where "no action possible" used to be; staff tick the material, record it,
and the page, the history and the receipt reprint say it was received. At the hub: an operator records
a material brought to the district hall from the dashboard's application page; the audit log holds it
and the village hears of it on its next sync."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import District, sanji, shot
from tests.ui.test_browser_hub import login

pytestmark = pytest.mark.slow

ITEM = "360802-0008"  # 残疾人证申领受理: decided at the district, no inspection, the photo may be deferred
PHOTO = "近期免冠照片"


def _accept_deferring_the_photo(district: District) -> str:
    p = district.applicant()
    out = sanji(
        "node",
        "accept",
        str(district.node_dir),
        "--item",
        ITEM,
        "--name",
        p["name"],
        "--id-number",
        p["id_number"],
        "--phone",
        p["phone"],
        "--address",
        "兴桥镇岗塘村3组",
        "--material",
        "居民身份证",
        "--material",
        "户口簿",
        "--defer",
        PHOTO,
    )
    return str(out["number"])


def test_staff_record_a_deferred_material_on_an_approved_application(page: Any, district: District) -> None:
    number = _accept_deferring_the_photo(district)
    sanji("node", "sync", str(district.node_dir))
    for to in ("under_review", "approved"):
        sanji("hub", "transition", str(district.hub_dir), number, "--to", to)
    sanji("node", "sync", str(district.node_dir))
    district.node.up(ready_path="/status.json")

    page.goto(f"{district.node_url}/applications/{number}")
    assert page.locator(f"tr[data-material='{PHOTO}']").get_attribute("data-state") == "deferred"
    assert "当前状态下本站没有可办理的操作" not in page.content()
    page.check(f"#supplement-form input[value='{PHOTO}']")
    shot(page, "station-supplement")
    page.click("#supplement-submit")
    page.wait_for_url(re.compile(r".*\?done=supplemented$"))
    assert "已登记补交材料" in page.locator(".notice.ok").inner_text()
    row = page.locator(f"tr[data-material='{PHOTO}']")
    assert row.get_attribute("data-state") == "supplemented" and "收到" in row.inner_text()
    assert page.locator("#supplement-form").count() == 0  # nothing is owed any more
    assert f"材料「{PHOTO}」：已补交" in page.locator("#history").inner_text()

    page.goto(f"{district.node_url}/receipt?n={number}")
    assert PHOTO in page.locator(".supplemented").inner_text() and page.locator(".owed").count() == 0
    # It reaches the hub like any change.
    sanji("node", "sync", str(district.node_dir))
    shown = sanji("hub", "show", str(district.hub_dir), number)
    assert shown["materials"][PHOTO]["state"] == "supplemented"


def test_operator_records_a_material_brought_to_the_district_hall(page: Any, district: District) -> None:
    number = _accept_deferring_the_photo(district)
    sanji("node", "sync", str(district.node_dir))
    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    page.goto(f"{district.hub_url}/applications/{number}")
    page.click("#supplement-submit")  # nothing ticked: said so, nothing written
    assert "请勾选" in page.locator("#move-error").inner_text()
    page.check(f"#supplement-form input[value='{PHOTO}']")
    page.click("#supplement-submit")
    page.wait_for_url(re.compile(r".*\?done=supplemented$"))
    assert "已登记补交材料" in page.locator("#workflow-notice").inner_text()
    assert page.locator(f"tr[data-material='{PHOTO}']").get_attribute("data-state") == "supplemented"
    shot(page, "hub-supplement")
    page.goto(district.hub_url + "/audit")
    assert any(number in t and PHOTO in t for t in page.locator("#audit tbody tr").all_inner_texts())
    sanji("node", "sync", str(district.node_dir))
    apps = sanji("node", "applications", str(district.node_dir))["applications"]
    assert [a["number"] for a in apps] == [number]
