"""The hub's workflow buttons in a real browser: an operator reviews an application and approves it
from its dashboard page, answering the confirmation dialog, against a real `sanji hub serve` process.
The decision reaches the village on its next sync. The page is saved to screens/ for docs/screens.md."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import ITEM_PROMISED, District, sanji, shot
from tests.ui.test_browser_hub import login

pytestmark = pytest.mark.slow

FIELD = "360802-F01"


def test_operator_reviews_and_approves_with_the_buttons(page: Any, district: District) -> None:
    number = str(district.accept(ITEM_PROMISED)["number"])
    sanji("node", "sync", str(district.node_dir))
    hub = str(district.hub_dir)
    # The field device was only registered when the district was built: enrol it, so it can be chosen.
    token = sanji("hub", "enroll", hub, "--station", FIELD, "--name", "踏勘终端一号", "--tier", "field")["token"]
    sanji("node", "init", str(district.root / "inspector"), "--hub", district.hub_url, "--token", token)

    login(page, district)
    page.wait_for_url(district.hub_url + "/")
    page.goto(f"{district.hub_url}/applications/{number}")
    moves = page.locator("#move-form button[name=to]")
    assert [moves.nth(i).get_attribute("data-move") for i in range(moves.count())] == [
        "supplement",
        "review",
        "reject",
        "withdraw",
    ]
    assert page.locator("#inspect-form").count() == 0  # nothing to inspect before review

    page.fill("#move-note", "材料齐全，转入审查")
    page.get_by_role("button", name="转入审查").click()  # no confirmation for a step that can be followed up
    page.wait_for_url(re.compile(r".*\?done=under_review$"))
    assert "办件状态已变更为「审查」" in page.locator("#workflow-notice").inner_text()
    assert page.locator("[data-status=under_review]").count() >= 1
    # Under review the item (最低生活保障申请) may be inspected: a form with the one enrolled field device.
    assert page.locator("#inspector option").all_inner_texts() == [f"踏勘终端一号（{FIELD}）"]
    assert page.locator("#move-form button[data-move=inspect]").count() == 0
    shot(page, "hub-workflow")

    # Denying asks first; dismissing the dialog sends nothing.
    dialogs: list[str] = []

    def dismiss(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="作出不予许可决定").click()
    assert dialogs and "不予许可" in dialogs[0]

    def accept(d: Any) -> None:
        dialogs.append(d.message)
        d.accept()

    # 最低生活保障申请 needs an on-site inspection and no report is in: 准予许可 alone is refused, with why.
    page.fill("#move-note", "经审查符合条件")
    page.once("dialog", accept)
    page.get_by_role("button", name="准予许可").click()
    assert "需现场踏勘，尚无踏勘报告，不能准予许可" in page.locator("#move-error").inner_text()
    assert sanji("hub", "show", hub, number)["status"] == "under_review"
    # An explicit override with a reason goes through, and the audit log and the history keep the reason.
    page.fill("#override-reason", "上月已踏勘同一住址")
    page.once("dialog", accept)
    page.get_by_role("button", name="准予许可").click()
    page.wait_for_url(re.compile(r".*\?done=approved$"))
    assert "准予许可" in dialogs[1] and "准予许可" in dialogs[2]
    assert "未经现场踏勘准予许可" in page.locator("#history").inner_text()
    assert "办件状态已变更为「准予」" in page.locator("#workflow-notice").inner_text()
    assert [page.locator("#move-form button[name=to]").nth(0).get_attribute("data-move")] == ["complete"]

    shown = sanji("hub", "show", hub, number)
    assert shown["status"] == "approved"
    assert shown["fields"]["decision"] == "准予: 经审查符合条件"
    # The dismissed denial never reached the hub: the audit log holds the review and the approval only.
    page.goto(district.hub_url + "/audit")
    moved = [t for t in page.locator("#audit tbody tr").all_inner_texts() if "变更办件状态" in t]
    assert len(moved) == 2
    assert "under_review→approved（未经现场踏勘准予，理由：上月已踏勘同一住址）" in moved[0]
    assert "accepted→under_review" in moved[1]
    # The village hears of the decision on its next sync.
    sanji("node", "sync", str(district.node_dir))
    apps = {a["number"]: a for a in sanji("node", "applications", str(district.node_dir))["applications"]}
    assert apps[number]["status"] == "approved"
