"""The application page's inspection report in a real browser: its photos and signature really load.

Everything is set up with the `sanji` commands an operator and an inspector would type, against a
real `sanji hub serve` process: a village accepts an application that needs an on-site inspection,
the hub assigns it to a field device, the device records a report with two photos and a signature
(real PNGs drawn by the test) and syncs, which uploads them in chunks. The operator then opens the
application on the dashboard, and each picture must have decoded (``naturalWidth > 0``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import ITEM_PROMISED, District, sanji, shot
from tests.ui.test_browser_hub import login
from tests.ui.test_http_hub_inspection import png

pytestmark = pytest.mark.slow

FIELD = "360802-F01"


def reported_application(district: District, tmp_path: Path) -> tuple[str, list[Path]]:
    number = str(district.accept(ITEM_PROMISED)["number"])
    sanji("node", "sync", str(district.node_dir))
    hub = str(district.hub_dir)
    sanji("hub", "transition", hub, number, "--to", "under_review")
    sanji("hub", "inspect", hub, number, "--inspector", FIELD)
    # The field device was only registered when the district was built: a fresh token enrols it.
    token = sanji("hub", "enroll", hub, "--station", FIELD, "--name", "踏勘终端一号", "--tier", "field")["token"]
    device = str(district.root / "inspector")
    sanji("node", "init", device, "--hub", district.hub_url, "--token", token)
    sanji("node", "sync", device)
    task = sanji("node", "tasks", device)["tasks"][0]["task"]
    files = []
    for name, data in (
        ("front.png", png(64, 48, (180, 60, 40))),
        ("roof.png", png(48, 64, (40, 90, 160))),
        ("signature.png", png(120, 40, (20, 20, 20))),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        files.append(path)
    sanji(
        "node",
        "report",
        device,
        task,
        "--result",
        "rectify",
        "--finding",
        "屋顶漏雨，需整改后复查",
        "--gps",
        "27.1167,114.9833,900",
        "--photo",
        str(files[0]),
        "--photo",
        str(files[1]),
        "--signature",
        str(files[2]),
        "--check",
        "1=yes",
    )
    synced = sanji("node", "sync", device)
    assert synced["blobs"]["pending"] == 0, synced  # every photo and the signature reached the hub
    return number, files


def test_the_report_photos_load_on_the_application_page(page: Any, district: District, tmp_path: Path) -> None:
    number, files = reported_application(district, tmp_path)
    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    page.goto(f"{district.hub_url}/applications/{number}")
    page.wait_for_load_state("load")
    section = page.locator("#inspections")
    assert section.locator("[data-result=rectify]").inner_text() == "需整改"
    assert "定位精度差" in section.locator("[data-gps-flag]").inner_text()
    assert section.locator("[data-waiting]").count() == 0
    images = section.locator("img")
    assert images.count() == len(files)
    sizes = images.evaluate_all("els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
    assert sizes == [[True, 64, 48], [True, 48, 64], [True, 120, 40]], sizes
    shot(page, "hub-inspection")
    # Each thumbnail links to the full picture, which opens in a tab of its own.
    href = section.locator("[data-photos] a").first.get_attribute("href")
    assert href and re.fullmatch(rf"/applications/{re.escape(number)}/blobs/[0-9a-f]{{64}}", href)
    with page.context.expect_page() as opened:
        section.locator("[data-photos] a").first.click()
    full = opened.value
    full.wait_for_load_state("load")
    assert full.evaluate("() => document.images.length === 1 && document.images[0].naturalWidth") == 64
