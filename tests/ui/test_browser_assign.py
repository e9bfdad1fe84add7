"""A township centre assigns an on-site inspection (现场踏勘) in a real browser, with the hub down: real
`sanji` processes built as in tests/ui/conftest.py (a village accepts 临时救助申请, which the township
decides and which needs an inspection; the township syncs, learning the district's field devices,
and moves it to review); the township's own `sanji node serve` shows the form, staff pick the second
device and submit, and the page says the task goes at the next sync, with the time limit paused. Once
the hub is back, "sync now" takes the task up and the hub lists the inspection."""

from __future__ import annotations

import re
from typing import Any

import pytest

from node.station import Station
from sync.inspection import PAUSED_LABEL
from tests.ui.conftest import District, Proc, free_port, make_id, sanji, shot

pytestmark = pytest.mark.slow

ITEM = "360802-0006"  # 临时救助申请: decided by the township, on-site inspection required
MATERIALS = ("居民身份证", "临时救助申请书", "困难情况证明材料")
FIELD, SECOND = "360802-F01", "360802-F02"


def task_of(folder: Any, number: str) -> dict[str, object]:
    st = Station(folder)
    try:
        rows = st.conn.execute("SELECT id FROM records WHERE entity='task'").fetchall()
        tasks = [st.records.values("task", str(r[0])) for r in rows]
    finally:
        st.close()
    [task] = [t for t in tasks if t.get("number") == number]
    return task


def test_township_assigns_an_inspection_from_the_application_page(page: Any, district: District) -> None:
    hub, village, township = str(district.hub_dir), str(district.node_dir), district.root / "township"
    sanji("hub", "enroll", hub, "--station", SECOND, "--name", "踏勘终端二号", "--tier", "field")
    args = [
        "node",
        "accept",
        village,
        "--item",
        ITEM,
        "--name",
        "测试申请人丁",
        "--id-number",
        make_id(806),
        "--phone",
        "13900000806",
        "--address",
        "兴桥镇塅口村5组",
    ]
    number = str(sanji(*args, *[a for m in MATERIALS for a in ("--material", m)])["number"])
    sanji("node", "sync", village)
    sanji("node", "sync", str(township))  # the application and the district's field devices
    sanji("node", "transition", str(township), number, "--to", "under_review")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = Proc(
        ["node", "serve", str(township), "--port", str(port), "--interval", "3600"], url, district.root / "township.log"
    )
    proc.up(ready_path="/status.json")
    try:
        district.hub.down()  # the centre assigns offline
        page.goto(f"{url}/applications/{number}")
        page.wait_for_selector("#hub-state[data-online=no]")
        assert page.locator(".page-head [data-status]").get_attribute("data-status") == "under_review"
        assert page.locator("button[data-move=inspect]").count() == 0
        assert page.locator("#move-form button[value=inspecting]").count() == 0
        options = page.locator("#inspector option")
        assert [options.nth(i).get_attribute("value") for i in range(options.count())] == [FIELD, SECOND]
        hint = page.locator("#assign-form .hint").inner_text()
        default_due = re.search(r"5 个工作日后（(\d{4}-\d{2}-\d{2})）", hint)
        assert default_due, hint
        page.select_option("#inspector", SECOND)
        page.locator("#assign-form").scroll_into_view_if_needed()
        shot(page, "station-inspection-assign")
        page.click("#assign-submit")

        page.wait_for_url(re.compile(rf".*/applications/{re.escape(number)}\?done=inspect$"))
        notice = page.locator(".notice.ok").inner_text()
        assert "已安排踏勘，任务将在下次同步时送达踏勘设备；办理时限暂停" in notice
        assert page.locator(".page-head [data-status]").get_attribute("data-status") == "inspecting"
        assert page.locator("#paused").inner_text() == PAUSED_LABEL  # 时限暂停（现场踏勘中）
        row = page.locator("#inspections tr[data-task]")
        assert row.count() == 1 and row.get_attribute("data-status") == "assigned"
        assert SECOND in row.inner_text() and default_due.group(1) in row.inner_text() and "待踏勘" in row.inner_text()
        assert page.locator("#assign-form").count() == 0  # one open task at a time
        shot(page, "station-inspection-assigned")
        assert int(page.locator("#pending").inner_text()) >= 2  # the task and the move wait to go up
        task = task_of(township, number)
        assert (task["inspector"], task["due"], task["status"]) == (SECOND, default_due.group(1), "assigned")
        [app] = [a for a in sanji("node", "applications", str(township))["applications"] if a["number"] == number]
        assert (app["status"], app["paused"]) == ("inspecting", True)

        district.hub.up()
        page.click("#sync-now")
        page.wait_for_url(re.compile(r".*sync=ok.*"))
        assert page.locator("#pending").inner_text() == "0"
        shown = sanji("hub", "show", hub, number)
        assert shown["status"] == "inspecting"
        assert [(i["inspector"], i["status"]) for i in shown["inspections"]] == [(SECOND, "assigned")]
    finally:
        proc.down()
