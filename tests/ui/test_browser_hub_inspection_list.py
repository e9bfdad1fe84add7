"""The dashboard's list of inspections (踏勘) in a real browser, against a real `sanji hub serve`.

Set up with the commands an operator and an inspector would type: two applications need an on-site
inspection; the field device reports on the first and carries the report to the hub by USB without
its photos (only the batch files are imported), the second stays assigned. The operator finds the
list from the header, narrows it to 缺照片, follows the number to the application (its photos show
as 等待上传), and once the device syncs the photos arrive and the filter comes back empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import ITEM_PROMISED, District, sanji, shot
from tests.ui.test_browser_hub import login
from tests.ui.test_http_hub_inspection import png

pytestmark = pytest.mark.slow

FIELD = "360802-F01"


def assigned(district: District) -> str:
    number = str(district.accept(ITEM_PROMISED)["number"])
    sanji("node", "sync", str(district.node_dir))
    sanji("hub", "transition", str(district.hub_dir), number, "--to", "under_review")
    sanji("hub", "inspect", str(district.hub_dir), number, "--inspector", FIELD)
    return number


def test_the_operator_finds_reports_still_missing_photos(page: Any, district: District, tmp_path: Path) -> None:
    hub = str(district.hub_dir)
    reported = assigned(district)
    token = sanji("hub", "enroll", hub, "--station", FIELD, "--name", "踏勘终端一号", "--tier", "field")["token"]
    device = str(district.root / "inspector")
    sanji("node", "init", device, "--hub", district.hub_url, "--token", token)
    sanji("node", "sync", device)
    task = sanji("node", "tasks", device)["tasks"][0]["task"]
    shots = []
    for name, data in (("front.png", png(64, 48, (180, 60, 40))), ("roof.png", png(48, 64, (40, 90, 160)))):
        path = tmp_path / name
        path.write_bytes(data)
        shots += ["--photo", str(path)]
    sanji("node", "report", device, task, "--result", "rectify", "--finding", "屋顶漏雨，需整改后复查", *shots)
    usb = tmp_path / "usb"
    sanji("node", "export", device, "--out", str(usb))
    batches = sorted(usb.rglob("*.sjb"))
    assert batches and len(batches) < len([p for p in usb.rglob("*") if p.is_file()])  # the photos stay behind
    sanji("hub", "import", hub, *map(str, batches))
    waiting = assigned(district)  # newer, still open

    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    page.click("nav.nav >> text=踏勘")
    page.wait_for_url(district.hub_url + "/inspections")
    table = page.locator("#inspections")
    assert table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.number)") == [waiting, reported]
    assert table.locator(f"tr[data-number='{waiting}'] [data-task-status]").inner_text() == "待踏勘"
    assert table.locator(f"tr[data-number='{reported}'] [data-missing]").inner_text() == "缺 2 个文件"
    shot(page, "hub-inspections")
    page.click("nav.tabs >> text=缺照片")
    page.wait_for_url(district.hub_url + "/inspections?missing=1")
    rows = table.locator("tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-number") == reported
    assert rows.first.locator("[data-result]").inner_text() == "需整改"
    assert rows.first.locator("[data-missing]").inner_text() == "缺 2 个文件"
    rows.first.locator(f"a:text('{reported}')").click()
    page.wait_for_url(f"{district.hub_url}/applications/{reported}#inspections")
    assert page.locator("#inspections [data-waiting]").count() == 2

    synced = sanji("node", "sync", device)  # the device comes online: its photos go up in chunks
    assert synced["blobs"]["pending"] == 0, synced
    page.goto(district.hub_url + "/inspections?missing=1")
    assert page.locator("#no-inspections").inner_text() == "所有踏勘报告的照片和签名均已上传到区局。"
