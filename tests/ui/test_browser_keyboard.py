"""Keys only (issue 19): a staff member accepts an application without touching the mouse, the overview's
refresh never takes focus away, and a filter never submits on an arrow key. Every page visited is also
checked by axe (the `page` fixture)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import ITEM_IMMEDIATE, ITEM_PROMISED, District, make_id, sanji, wait_js
from tests.ui.test_browser_hub import login

pytestmark = pytest.mark.slow

ACTIVE = """() => { const e = document.activeElement;
  return {id: e.id, tag: e.tagName, type: e.type || '', name: e.name || '', text: (e.innerText || '').trim(),
          item: e.getAttribute('data-item') || '', outline: getComputedStyle(e).outlineWidth}; }"""


def tab_to(pg: Any, want: Any, most: int) -> int:
    """Press Tab until ``want(active)`` holds; return how many presses it took (at most ``most``)."""
    for n in range(1, most + 1):
        pg.keyboard.press("Tab")
        if want(pg.evaluate(ACTIVE)):
            return n
    raise AssertionError(f"not reached in {most} Tabs; focus is on {pg.evaluate(ACTIVE)}")


def test_an_application_is_accepted_with_keys_only(page: Any, district: District) -> None:
    district.node.up(ready_path="/status.json")
    page.goto(district.node_url + "/")
    page.wait_for_load_state()
    # The first Tab reaches the skip link, which takes focus past the header and the status bar.
    assert tab_to(page, lambda a: a["text"] == "跳到正文", 1) == 1
    page.keyboard.press("Enter")
    assert tab_to(page, lambda a: a["id"] == "start-accept", 2) <= 2
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.evaluate(ACTIVE)["id"] == "item-search"  # the search has focus on arrival
    page.keyboard.type("zdshbz")  # pinyin initials, no Chinese input method needed
    assert tab_to(page, lambda a: a["item"] == ITEM_PROMISED, 4) <= 4
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state()

    # Skip link, then 姓名 in a few presses (it took 9 before the skip link).
    assert tab_to(page, lambda a: a["text"] == "跳到正文", 1) == 1
    page.keyboard.press("Enter")
    assert tab_to(page, lambda a: a["id"] == "name", 3) <= 3
    assert page.evaluate(ACTIVE)["outline"] == "3px"  # a focus ring that can be seen (1.4.11)
    values = {"name": "键盘受理人", "id_number": make_id(412), "phone": "13907960412", "address": "兴桥镇岗塘村5组"}
    page.keyboard.type(values["name"])
    for field in ("id_number", "phone", "address"):
        assert tab_to(page, lambda a, f=field: a["id"] == f, 1) == 1
        page.keyboard.type(values[field])
    # Each material's choice is a radio group: Tab enters it on the checked 未提供, the arrow key wraps
    # round to 已收取. Nothing else needs the mouse.
    groups = 0
    for _ in range(40):
        page.keyboard.press("Tab")
        active = page.evaluate(ACTIVE)
        if active["type"] == "radio":
            assert active["outline"] in ("0px", "3px")  # the ring is drawn on the label (:has), see below
            page.keyboard.press("ArrowRight")
            assert page.evaluate("document.activeElement.value") == "submitted"
            ring = page.evaluate("getComputedStyle(document.activeElement.closest('label')).outlineWidth")
            assert ring == "3px"
            groups += 1
        elif active["id"] == "submit":
            break
    else:
        raise AssertionError("the 确认受理 button was never reached by Tab")
    assert groups == page.locator("tr[data-material]").count() >= 4
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/receipt\?n=.+"))
    number = page.locator(".app-number").inner_text()
    apps = sanji("node", "applications", str(district.node_dir))["applications"]
    assert [a["number"] for a in apps] == [number]


def test_the_overview_refresh_never_takes_focus(page: Any, district: District) -> None:
    page.clock.install()  # the 20-second refresh runs when the test says so
    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    today = page.locator("[data-k=today]")
    before = today.inner_text()
    link = page.locator("#live a[href='/conflicts']")
    link.focus()
    district.accept(ITEM_IMMEDIATE)
    sanji("node", "sync", str(district.node_dir))  # the figure the next refresh would show changes
    page.clock.run_for(45_000)  # two rounds
    page.wait_for_timeout(1500)  # time for a fetch that should not have been made
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/conflicts"
    assert today.inner_text() == before  # skipped while focus was inside the block

    page.locator("#refresh-toggle").focus()  # outside the block: the refresh goes on
    page.clock.run_for(21_000)
    wait_js(page, f"document.querySelector('[data-k=today]').innerText !== '{before}'")
    assert page.evaluate("document.activeElement.id") == "refresh-toggle"

    # The pause switch stops it (2.2.2), with its state said in words and in aria-pressed.
    page.keyboard.press("Enter")
    assert page.get_attribute("#refresh-toggle", "aria-pressed") == "true"
    assert page.locator("#refresh-state").inner_text() == "自动刷新已暂停"
    shown = today.inner_text()
    district.accept(ITEM_IMMEDIATE)
    sanji("node", "sync", str(district.node_dir))
    page.clock.run_for(45_000)
    page.wait_for_timeout(1500)
    assert today.inner_text() == shown
    page.keyboard.press("Enter")
    assert page.get_attribute("#refresh-toggle", "aria-pressed") == "false"


@pytest.mark.parametrize("side", ["hub", "station"])
def test_filters_never_submit_on_arrow_keys(page: Any, district: District, side: str) -> None:
    if side == "hub":
        login(page, district)
        page.wait_for_url(district.hub_url + "/")
        url = district.hub_url + "/applications"
        selects = ["#station", "#status", "#due"]
    else:
        district.node.up(ready_path="/status.json")
        url = district.node_url + "/applications"
        selects = ["#status", "#due"]
    page.goto(url)
    page.wait_for_load_state()
    for sel in selects:
        page.locator(sel).focus()
        first = page.locator(sel).input_value()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        page.wait_for_timeout(400)  # an auto-submit would have navigated by now
        assert page.url == url, f"{sel}: an arrow key submitted the filters"
        assert page.evaluate("document.activeElement.id") == sel[1:]
        assert page.locator(sel).input_value() != first
    # The 查询 button applies them.
    assert tab_to(page, lambda a: a["text"] == "查询", 3) <= 3
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "status=" in page.url and page.url != url
