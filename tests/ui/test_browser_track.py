"""The citizen's tracking page on a phone (390 px wide, Chromium): typed from the notice in lower case
without dashes, the status page, and an unknown code; large type, no sideways scrolling, reachable by
keyboard. Screenshots for docs/screens.md. The notice itself, with its code and QR code, at the station."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import ITEM_PROMISED, District, sanji, shot

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    pg = context.new_page()
    outside: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(("http://127.0.0.1", "data:", "about:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    from tests.ui.a11y import Watch, watching  # fails loudly (not a skip) without axe-playwright-python

    watch = Watch()  # the tracking pages are checked by axe too, on the phone (issue 19)
    with watching(pg, watch):
        yield pg
    if not pg.is_closed():
        watch.settle(pg)
    context.close()
    assert not outside, f"the page tried to load from outside Sanji: {outside}"
    assert any("/track" in url for url in watch.checked), watch.checked
    watch.assert_clean()


def _fits_and_reads(pg: Any) -> None:
    width = pg.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width} px)"
    body_px = float(pg.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))
    assert body_px >= 18, f"body text is {body_px} px; 适老化 asks for at least 18"


def test_a_citizen_follows_the_application_on_a_phone(phone: Any, page: Any, district: District) -> None:
    made = district.accept(ITEM_PROMISED)
    code = str(made["tracking_code"])
    phone.goto(f"{district.hub_url}/track")
    _fits_and_reads(phone)
    phone.keyboard.press("Tab")  # the skip link first, then the code field
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "code"
    assert phone.locator("label[for=code]").inner_text() == "查询码"
    phone.keyboard.type(code.lower().replace("-", ""))
    shot(phone, "track-phone-form")
    with phone.expect_navigation():
        phone.keyboard.press("Enter")
    assert phone.locator("#track-none").is_visible()  # accepted, not uploaded yet
    assert "请待上传后再查询" in phone.locator("#track-none").inner_text()
    assert phone.url.endswith(f"/track/{code}")

    sanji("node", "sync", str(district.node_dir))
    district.node.up(ready_path="/status.json")
    page.goto(f"{district.node_url}/receipt?n={made['number']}")
    assert page.locator(f"[data-tracking-code='{code}']").is_visible()
    assert page.locator("svg.track-qr").is_visible()
    shot(page, "station-receipt-tracking")

    phone.reload()
    assert phone.locator("#track-status").inner_text() == "受理"
    assert phone.locator("#item-name").inner_text() == "最低生活保障申请"
    assert "区局已于" in phone.locator("#track-received").inner_text()
    _fits_and_reads(phone)
    sanji("hub", "transition", str(district.hub_dir), str(made["number"]), "--to", "under_review")
    phone.reload()
    assert phone.locator("#track-status").inner_text() == "审查"
    assert phone.locator("#track-history li").count() == 2
    shot(phone, "track-phone-status")

    phone.goto(f"{district.hub_url}/track?code=12345")
    assert phone.locator("#track-error").is_visible()
    assert phone.get_attribute("#code", "aria-invalid") == "true"
    shot(phone, "track-phone-malformed")
