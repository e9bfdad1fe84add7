"""Zoom, small screens and the user's own font size (issue 19 items 5, 6 and 9; WCAG 1.4.4, 1.4.10, 适老化).

- At a 320 px wide viewport (a 1280 px screen at 400 %) no page scrolls sideways; a wide table scrolls
  inside its own box (.scroll-x) and only there.
- With the browser's default font size at 24 px instead of 16, body text and the accept form grow with it.
- No visible text is under 12 px; body text is at least 16 px, 18 px in the station window.
- Screenshots at 200 % (640 × 400 CSS pixels at twice the density) and on a phone, for docs/screens.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.a11y import Watch
from tests.ui.conftest import ITEM_PROMISED, District, sanji, shot
from tests.ui.test_browser_field import Field
from tests.ui.test_browser_field import field as field  # the fixture: a field device with two tasks
from tests.ui.test_browser_hub import login

pytestmark = pytest.mark.slow

HUB_PAGES = ["/", "/stations", "/stations/360802-T01-01", "/applications", "/inspections", "/conflicts?all=1"]
HUB_PAGES += ["/quarantine", "/catalogue", "/audit", "/account/password"]
STATION_PAGES = ["/", "/accept", f"/accept/item/{ITEM_PROMISED}", "/applications", "/export"]

# What sticks out past the viewport outside a table's scroll box, and whether the page scrolls sideways.
SIDEWAYS = """() => {
  const w = document.documentElement.clientWidth, out = [];
  if (document.documentElement.scrollWidth > w) {
    out.push('page is ' + document.documentElement.scrollWidth + ' px wide in ' + w);
  }
  for (const e of document.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= w + 1 || e.closest('.scroll-x')) { continue; }
    out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '')
      + ' reaches ' + Math.round(r.right) + ' px');
  }
  return out.slice(0, 8);
}"""

# The body's size, and the smallest visible text on the page with where it is.
SIZES = """() => {
  let min = 1e9, where = '';
  for (const e of document.body.querySelectorAll('*')) {
    const own = Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    const r = e.getBoundingClientRect();
    if (!own || r.width === 0 || r.height === 0 || getComputedStyle(e).visibility === 'hidden') { continue; }
    const px = parseFloat(getComputedStyle(e).fontSize);
    if (px < min) { min = px; where = e.tagName.toLowerCase() + ': ' + e.textContent.trim().slice(0, 20); }
  }
  return {body: parseFloat(getComputedStyle(document.body).fontSize), min: min, where: where};
}"""


def no_sideways_scroll(pg: Any, url: str) -> None:
    pg.goto(url)
    out = pg.evaluate(SIDEWAYS)
    assert out == [], f"{url} at {pg.viewport_size['width']} px: {out}"


def sizes(pg: Any) -> dict[str, Any]:
    return dict(pg.evaluate(SIZES))


def test_hub_pages_reflow_at_320_px_and_keep_text_readable(page: Any, district: District) -> None:
    number = district.conflict()
    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    for path in [*HUB_PAGES, f"/applications/{number}"]:
        page.goto(district.hub_url + path)
        s = sizes(page)
        assert s["body"] >= 16 and s["min"] >= 12, (path, s)
    page.set_viewport_size({"width": 320, "height": 640})
    for path in [*HUB_PAGES, f"/applications/{number}"]:
        no_sideways_scroll(page, district.hub_url + path)
    # The wide table really is in its own box, which scrolls and takes a Tab stop (sanji.js).
    page.goto(district.hub_url + "/audit")
    box = page.locator(".scroll-x").first
    assert box.evaluate("b => b.scrollWidth > b.clientWidth") and box.get_attribute("tabindex") == "0"


def test_station_pages_reflow_at_320_px_and_follow_the_font_size(page: Any, district: District) -> None:
    district.node.up(ready_path="/status.json")
    number = str(district.accept(ITEM_PROMISED)["number"])
    pages = [*STATION_PAGES, f"/receipt?n={number}", f"/applications/{number}"]
    for path in pages:
        page.goto(district.node_url + path)
        s = sizes(page)
        assert s["body"] >= 18 and s["min"] >= 12, (path, s)
    form = district.node_url + f"/accept/item/{ITEM_PROMISED}"
    page.goto(form)
    normal = {"body": sizes(page)["body"], "name": page.eval_on_selector("#name", "e => getComputedStyle(e).fontSize")}

    # The browser's default font size at 24 px (an older user's setting): the form grows with it.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Page.setFontSizes", {"fontSizes": {"standard": 24, "fixed": 24}})
    page.reload()
    grown = {"body": sizes(page)["body"], "name": page.eval_on_selector("#name", "e => getComputedStyle(e).fontSize")}
    assert grown["body"] == normal["body"] * 1.5 == 27, (normal, grown)
    assert float(grown["name"].rstrip("px")) > float(normal["name"].rstrip("px")) >= 18, (normal, grown)
    cdp.send("Page.setFontSizes", {"fontSizes": {"standard": 16, "fixed": 13}})

    page.set_viewport_size({"width": 320, "height": 640})
    for path in pages:
        no_sideways_scroll(page, district.node_url + path)


def test_field_pages_reflow_at_320_px(page: Any, field: Field) -> None:
    page.set_viewport_size({"width": 320, "height": 640})
    for path in ("/", "/tasks", f"/tasks/{next(iter(field.tasks))}"):
        no_sideways_scroll(page, field.url + path)
        s = sizes(page)
        assert s["body"] >= 18 and s["min"] >= 12, (path, s)


def test_screenshots_at_200_percent_and_on_a_phone(browser: Any, district: District) -> None:
    district.node.up(ready_path="/status.json")
    number = str(district.accept(ITEM_PROMISED)["number"])
    sanji("node", "sync", str(district.node_dir))
    looks = {
        "zoom200": {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2},
        "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True},
    }
    for look, options in looks.items():
        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **options)
        pg = context.new_page()
        watch = Watch()
        try:
            for name, url in (
                ("station-accept-form", district.node_url + f"/accept/item/{ITEM_PROMISED}"),
                ("station-applications", district.node_url + "/applications"),
                ("station-receipt", district.node_url + f"/receipt?n={number}"),
            ):
                pg.goto(url)
                assert pg.evaluate(SIDEWAYS) == [], (look, name)
                watch.check(pg)
                if look == "zoom200":  # the status bar no longer sticks and eats the screen (item 9)
                    assert pg.eval_on_selector("#statusbar", "e => getComputedStyle(e).position") != "sticky"
                shot(pg, f"a11y-{look}-{name}", full_page=False)
            login(pg, district)
            pg.wait_for_url(district.hub_url + "/")
            for name, path in (("hub-overview", "/"), ("hub-applications", "/applications")):
                pg.goto(district.hub_url + path)
                assert pg.evaluate(SIDEWAYS) == [], (look, name)
                watch.check(pg)
                shot(pg, f"a11y-{look}-{name}", full_page=False)
        finally:
            context.close()
        watch.assert_clean()
