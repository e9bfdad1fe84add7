"""The operator's dashboard in a real browser: log in, see the district, settle conflicts and
quarantine, find an application and reveal its applicant on purpose, publish a catalogue, enrol and
revoke a station. Each main page is saved to screens/ for docs/screens.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import PASSWORD, District, sanji, shot

pytestmark = pytest.mark.slow


def login(page: Any, district: District, password: str = PASSWORD) -> None:
    page.goto(district.hub_url + "/")
    assert page.url.startswith(district.hub_url + "/login")
    page.fill("#user", "zhangwei")
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_operator_logs_in_and_sees_the_district(page: Any, district: District) -> None:
    district.accept()
    sanji("node", "sync", str(district.node_dir))
    sanji("node", "sync", str(district.root / "township"))
    login(page, district, password="wrong-password")
    assert page.locator("#login-error").inner_text() == "用户名或密码错误。"
    shot(page, "hub-login")
    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    assert page.locator("[data-user]").inner_text() == "zhangwei"
    tree = page.locator("#station-tree")
    for code in ("360802-T01", "360802-T01-01", "360802-T01-05", "360802-F01"):
        assert tree.locator(f"tr[data-station='{code}']").count() == 1, code
    # The township and the online village have synced; the second village was only registered.
    assert "在线" in tree.locator("tr[data-station='360802-T01-01']").inner_text()
    assert "待接入" in tree.locator("tr[data-station='360802-T01-05']").inner_text()
    assert page.locator("[data-k=online]").inner_text() == "2"
    assert page.locator("[data-k=today]").inner_text() == "1"
    shot(page, "hub-overview")

    page.click("tr[data-station='360802-T01-01'] a")
    page.wait_for_url(re.compile(r".*/stations/360802-T01-01$"))
    assert page.locator("svg.chart rect").count() == 28  # 14 days × (changes, batches)
    assert page.get_by_text("已签收").count() >= 1
    shot(page, "hub-station")

    page.click("text=退出")
    page.wait_for_url(re.compile(r".*/login$"))
    page.goto(district.hub_url + "/conflicts")
    assert "/login" in page.url  # the session is gone


def test_operator_resolves_conflicts_and_quarantine(page: Any, district: District) -> None:
    number = district.conflict()
    held = district.quarantine()
    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    assert page.locator("[data-k=conflicts]").inner_text() == "2"
    page.click("nav >> text=冲突")
    cards = page.locator("section[data-conflict]")
    assert cards.count() == 2
    shot(page, "hub-conflicts")

    # The note: the district's "转入审查" won; the operator overrides with the village's request.
    note = cards.filter(has_text="备注")
    assert "转入审查" in note.inner_text() and "请补充户口簿复印件" in note.inner_text()
    page.once("dialog", lambda d: d.accept())
    note.get_by_role("button", name="改用另一方的值").click()
    page.wait_for_url(re.compile(r".*/conflicts\?done=overridden$"))
    # The status: the workflow keeps 审查; the operator confirms it.
    status = page.locator("section[data-conflict]").filter(has_text="办件状态")
    status.get_by_role("button", name="确认采用当前值").click()
    page.wait_for_url(re.compile(r".*/conflicts\?done=confirmed$"))
    assert page.locator("section[data-conflict]").count() == 0
    assert sanji("hub", "conflicts", str(district.hub_dir))["conflicts"] == []
    shown = sanji("hub", "show", str(district.hub_dir), number)
    assert shown["fields"]["note"] == "请补充户口簿复印件"
    assert shown["status"] == "under_review"
    # The override is a hub change like any other: the station receives it on its next pull.
    sanji("node", "sync", str(district.node_dir))
    apps = {a["number"]: a for a in sanji("node", "applications", str(district.node_dir))["applications"]}
    assert apps[number]["status"] == "under_review"

    page.click("nav >> text=隔离")
    card = page.locator("section[data-quarantine]")
    assert card.count() == 1 and "decision" in card.inner_text()
    shot(page, "hub-quarantine")
    card.locator("input[name=reason][type=text]").fill("村站无权作出决定，已电话告知站点")
    card.get_by_role("button", name="驳回").click()
    page.wait_for_url(re.compile(r".*/quarantine\?done=rejected$"))
    assert page.locator("section[data-quarantine]").count() == 0
    assert sanji("hub", "status", str(district.hub_dir))["quarantined"] == 0
    assert "decision" not in sanji("hub", "show", str(district.hub_dir), held)["fields"]


def test_operator_finds_an_application_and_reveals_it_on_purpose(page: Any, district: District) -> None:
    accepted = district.accept()
    sanji("node", "sync", str(district.node_dir))
    login(page, district)
    page.goto(district.hub_url + "/applications")
    page.fill("#q", accepted["name"])
    page.click("form.filters button[type=submit]")
    rows = page.locator("#applications tbody tr")
    assert rows.count() == 1
    html = page.content()
    assert accepted["id_number"] not in html and accepted["phone"] not in html
    assert accepted["id_number"][:6] + "********" + accepted["id_number"][-4:] in html
    shot(page, "hub-applications")

    rows.first.locator("a").click()
    page.wait_for_url(re.compile(r".*/applications/.+"))
    assert page.locator("#applicant-id").inner_text().count("*") == 8
    assert page.locator("#history tbody tr").count() >= 1
    shot(page, "hub-application")
    page.click("text=查看完整身份证号和手机号")
    page.click("#reveal-form button[type=submit]")  # no reason: refused, on the page
    assert "请填写查看完整信息的理由" in page.locator("#reveal-form .err").inner_text()
    page.fill("#reason", "申请人来电核实身份")
    page.click("#reveal-form button[type=submit]")
    assert page.locator("#applicant-id").inner_text() == accepted["id_number"]
    page.goto(district.hub_url + "/audit")
    audit = page.locator("#audit tbody tr").first.inner_text()
    assert "查看完整信息" in audit and "申请人来电核实身份" in audit and "zhangwei" in audit
    shot(page, "hub-audit")


def test_operator_publishes_a_catalogue_and_manages_stations(page: Any, district: District, tmp_path: Path) -> None:
    doc = json.loads((Path(__file__).resolve().parents[2] / "sanji" / "data" / "catalogue-sample.json").read_text())
    doc["items"][3]["promised_days"] = 15  # 最低生活保障申请: a shorter promise
    doc["items"] = [i for i in doc["items"] if i["code"] != "360802-0054"]
    upload = tmp_path / "catalogue-v2.json"
    upload.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    login(page, district)
    page.goto(district.hub_url + "/catalogue")
    page.set_input_files("#file", str(upload))
    page.click("text=上传并预览差异")
    preview = page.locator("#preview")
    assert "v1 → v2" in preview.inner_text()
    assert "360802-0004" in preview.inner_text() and "承诺时限" in preview.inner_text()
    assert "360802-0054" in preview.inner_text()
    shot(page, "hub-catalogue-preview", full_page=False)
    page.once("dialog", lambda d: d.accept())
    page.click("text=确认发布 v2")
    page.wait_for_url(re.compile(r".*/catalogue\?done=published$"))
    assert "现行版本 v2" in page.content()

    page.goto(district.hub_url + "/stations")
    page.fill("#code", "360802-T01-09")
    page.fill("#name", "兴桥镇钓源村便民服务站")
    page.select_option("#tier", "village")
    page.select_option("#parent", "360802-T01")
    page.click("text=登记并生成令牌")
    assert page.locator("#token").inner_text().startswith("SJT-")
    with page.expect_download() as dl:
        page.click("text=下载登记文件")
    assert dl.value.suggested_filename == "360802-T01-09.sje"
    shot(page, "hub-stations")
    page.once("dialog", lambda d: d.accept())
    page.locator("tr[data-station='360802-T01-05']").get_by_role("button", name="吊销").click()
    page.wait_for_url(re.compile(r".*/stations/360802-T01-05\?done=revoked$"))
    assert "已吊销" in page.content()
    revoked = {s["code"]: s["revoked"] for s in sanji("hub", "status", str(district.hub_dir))["stations"]}
    assert revoked["360802-T01-05"] is True
