"""The station window in a real browser, with the hub down: a staff member accepts an application
through the form (a mistyped ID number first, caught on the spot), prints the receipt, sees it waiting
to go up, and sees the hub's signed receipt once the hub is back and "sync now" has run."""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from replica.ids import CHINA
from sync.identity import InvalidIdentity, check_id_number, check_phone
from tests.ui.conftest import District, make_id, sanji, shot, wrong_check

pytestmark = pytest.mark.slow


def test_staff_accepts_offline_prints_and_sees_the_hub_sign(page: Any, district: District) -> None:
    district.node.up(ready_path="/status.json")
    district.hub.down()  # the outage: everything below happens with the hub unreachable
    page.goto(district.node_url + "/")
    page.wait_for_selector("#hub-state[data-online=no]")
    shot(page, "station-home")

    with page.expect_navigation():  # waits for "load": station.js must listen before fill types
        page.click("#start-accept")
    page.fill("#item-search", "360802-0004")  # by code
    assert page.locator("li[data-search]:not(.hidden)").count() == 1
    page.fill("#item-search", "生活保障")  # by part of the name: the item and the 困难群众救助 theme
    assert page.locator("li[data-search]:not(.hidden)").count() >= 2
    shot(page, "station-accept-choose")
    page.click("a[data-item='360802-0004']")
    page.wait_for_url(re.compile(r".*/accept/item/360802-0004$"))

    person = {"name": "测试申请人甲", "id": make_id(731, date(1979, 3, 8)), "phone": "13907961234"}
    page.fill("#name", person["name"])
    page.fill("#id_number", wrong_check(person["id"]))
    page.fill("#phone", person["phone"])
    # 最低生活保障申请 needs an on-site inspection: the address (where the inspector goes) is required.
    assert page.get_attribute("#address", "required") is not None
    page.fill("#address", "兴桥镇岗塘村3组")
    page.press("#id_number", "Tab")
    assert page.locator("#id_number-err").inner_text() == "身份证号码校验位不符，请核对最后一位"
    assert "invalid" in (page.get_attribute("#id_number", "class") or "")
    for row in page.locator("tr[data-material]").all():
        name = row.get_attribute("data-material")
        row.locator("label", has_text="容缺" if name == "家庭收入情况声明" else "已收取").click()
    assert page.locator("[data-defer-for]:not(.hidden)").count() == 1
    page.click("#submit")  # refused in the browser: the number cannot be right
    assert page.url.endswith("/accept/item/360802-0004")
    assert sanji("node", "applications", str(district.node_dir))["applications"] == []
    shot(page, "station-accept-invalid-id")

    page.fill("#id_number", person["id"])
    page.press("#id_number", "Tab")
    assert page.locator("#id_number-err").inner_text() == ""
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/receipt\?n=.+"))
    number = page.locator(".app-number").inner_text()
    assert number.startswith("360802-T01-01-")
    receipt = page.locator("#receipt").inner_text()
    assert person["id"][:6] + "********" + person["id"][-4:] in receipt
    assert person["id"] not in page.content() and person["phone"] not in page.content()
    assert "家庭收入情况声明" in page.locator(".owed").inner_text()
    apps = sanji("node", "applications", str(district.node_dir))["applications"]
    assert [a["number"] for a in apps] == [number]
    assert page.locator(".due-date").inner_text() == apps[0]["due_date"]
    assert page.locator(".hub-receipt").get_attribute("data-upload") == "local"
    assert "待上传区行政审批局" in page.locator(".hub-receipt").inner_text()

    page.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
    page.click("#print-btn")
    assert page.evaluate("window.__printed") == 1
    shot(page, "station-receipt-pending")
    page.emulate_media(media="print")
    assert not page.locator("#statusbar").is_visible()
    shot(page, "station-receipt-print")
    page.emulate_media(media="screen")

    # Still offline: "sync now" says so and loses nothing.
    page.click("#sync-now")
    page.wait_for_url(re.compile(r".*sync=offline.*"))
    assert "暂时连不上区行政审批局" in page.locator("#sync-notice").inner_text()
    assert int(page.locator("#pending").inner_text()) >= 1
    assert page.locator("#hub-state").get_attribute("data-online") == "no"

    district.hub.up()
    page.click("#sync-now")
    page.wait_for_url(re.compile(r".*sync=ok.*"))
    assert page.locator("#pending").inner_text() == "0"
    assert page.locator("#hub-state").get_attribute("data-online") == "yes"
    hub_receipt = page.locator(".hub-receipt")
    assert hub_receipt.get_attribute("data-upload") == "receipted"
    assert "已送达区行政审批局" in hub_receipt.inner_text() and "签名已核验" in hub_receipt.inner_text()
    shot(page, "station-receipt-synced")
    hub_apps = sanji("hub", "applications", str(district.hub_dir))["applications"]
    assert [a["number"] for a in hub_apps] == [number]

    page.click("nav >> text=办件")
    row = page.locator(f"#applications tr[data-number='{number}']")
    assert "已送达" in row.inner_text() and "受理" in row.inner_text()
    shot(page, "station-applications")
    row.locator("a").click()
    page.fill("#move-note", "请补充家庭收入情况声明原件")
    page.click("button[data-move=supplement]")
    page.wait_for_url(re.compile(r".*done=moved$"))
    assert page.locator(".page-head [data-status]").get_attribute("data-status") == "supplement_requested"
    assert "请补充家庭收入情况声明原件" in page.locator("#history").inner_text()
    shot(page, "station-application")

    page.click("#usb-export")
    page.click("#export-btn")
    assert "已写出" in page.locator("#export-done").inner_text()
    assert list((district.node_dir / "usb-export").glob("*.sjb"))
    shot(page, "station-export")


def test_browser_id_check_agrees_with_the_server(page: Any, district: District) -> None:
    """The JavaScript port of GB 11643 and the phone rules give the server's verdict, message for message."""
    district.node.up(ready_path="/status.json")
    page.goto(district.node_url + "/accept/item/360802-0001")
    rng = random.Random(11643)
    today = datetime.now(CHINA).date()  # the station counts in Beijing time, and so does the page
    samples = []
    for n in range(120):
        born = date(1900, 1, 1) + timedelta(days=rng.randrange(0, (today - date(1900, 1, 1)).days))
        good = make_id(n, born)
        samples += [
            good,
            wrong_check(good),
            good[:10] + "1399" + good[14:],
            good[:16],
            good.lower(),
            "３６０８０２" + good[6:],
        ]
    samples += [make_id(1, today + timedelta(days=1)), make_id(2, date(1899, 12, 31)), "", "36080219840517X12X"]
    got = page.evaluate(
        "([xs, y, m, d]) => xs.map((x) => window.Sanji.checkId(x, new Date(y, m - 1, d)))",
        [samples, today.year, today.month, today.day],
    )
    for raw, message in zip(samples, got, strict=True):
        try:
            check_id_number(raw, today=today)
            expected = ""
        except InvalidIdentity as exc:
            expected = exc.message
        assert message == expected, raw
    phones = ["13907961234", "+8613907961234", "139 0796 1234", "12907961234", "1390796123", "０１３９"]
    got = page.evaluate("(xs) => xs.map((x) => window.Sanji.checkPhone(x))", phones)
    for raw, message in zip(phones, got, strict=True):
        try:
            check_phone(raw)
            expected = ""
        except InvalidIdentity as exc:
            expected = exc.message
        assert message == expected, raw
