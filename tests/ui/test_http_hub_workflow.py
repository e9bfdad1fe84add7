"""Workflow on the dashboard (the hub's moves as buttons, assigning an on-site inspection) and an
operator changing their own password, at the HTTP level (no browser).

A hub and a village station run in this process (``tests/ui/inproc.py``); the dashboard is the real
aiohttp app on the same hub folder. Applicants are generated; field devices get freshly generated keys.
What a page offers is checked against the workflow table itself (``sync.workflow.TRANSITIONS``) and
against a few cases written out by hand, and every change is checked where it lands: the hub's record
(``hub.operations.show``), the audit table, the station after a pull.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub import enrolment, operations
from hub.operations import applications, show
from node import commands
from protocol.keys import public_bytes
from replica.ids import CHINA
from sync.workflow import IMMEDIATE_ONLY, TRANSITIONS, Move, Status
from tests.ui.conftest import ITEM_IMMEDIATE, ITEM_PROMISED
from tests.ui.inproc import OPERATOR, PASSWORD, Pair, csrf_of, login

pytestmark = pytest.mark.slow


@pytest.fixture
def client(hub_client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    return hub_client


NEW_PASSWORD = "a-brand-new-pw-42"


async def page_csrf(client: TestClient[Any, Any], path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, path
    return csrf_of(await resp.text())


def accepted(pair: Pair, item: str = ITEM_PROMISED) -> str:
    number = str(pair.accept(item)["number"])
    pair.push()
    return number


def transition(hub: Any, number: str, to: str) -> dict[str, object]:
    """A hub move on the way to the status under test. 最低生活保障申请 needs an on-site inspection; these
    tests are about the buttons, so an approval goes ahead on an override (tested on its own below)."""
    reason = "测试：按钮的流程，不涉及踏勘" if to == "approved" else ""
    return operations.transition(hub, number, to, override_reason=reason)


def today() -> date:
    """The hub's today: due dates are days in Beijing time."""
    return datetime.now(CHINA).date()


def buttons(html: str) -> dict[str, str]:
    """The move buttons of the workflow form: {move: target status}."""
    form = re.search(r'<form[^>]*id="move-form".*?</form>', html, re.S)
    if form is None:
        return {}
    return {
        m.group(2): m.group(1)
        for m in re.finditer(
            r'<button type="submit" name="to" value="([a-z_]+)"[^>]*data-move="([a-z]+)"', form.group(0)
        )
    }


def confirmed(html: str) -> set[str]:
    """Moves whose button asks for confirmation first."""
    return set(re.findall(r'data-move="([a-z]+)" data-confirm="[^"]+"', html))


def devices(html: str) -> list[str]:
    select = re.search(r'<select id="inspector".*?</select>', html, re.S)
    return re.findall(r'<option value="([^"]+)"', select.group(0)) if select else []


def expected(status: Status, immediate: bool) -> dict[str, str]:
    """From the workflow table itself: every move the hub may make, except 踏勘, which is a form."""
    return {
        m.value: to.value
        for (s, m), to in TRANSITIONS.items()
        if s is status and m is not Move.INSPECT and (immediate or (s, m) not in IMMEDIATE_ONLY)
    }


def audit_rows(pair: Pair, action: str) -> list[tuple[str, str, str, str]]:
    return [
        tuple(r)
        for r in pair.hub.store.conn.execute(  # type: ignore[misc]
            "SELECT user, target, detail, reason FROM dash_audit WHERE action=? ORDER BY id", (action,)
        )
    ]


def field_device(pair: Pair, code: str, name: str, *, enrol: bool = True) -> None:
    token = enrolment.register(pair.hub, station=code, name=name, tier="field")
    if enrol:
        enrolment.redeem(
            pair.hub,
            token=token,
            sign_pub=public_bytes(Ed25519PrivateKey.generate()),
            seal_pub=public_bytes(X25519PrivateKey.generate()),
        )


# -- the buttons -------------------------------------------------------------------------------------


async def test_buttons_follow_the_workflow_from_each_status(client: TestClient[Any, Any], pair: Pair) -> None:
    await login(client)
    # Every status the hub can reach by itself, each on its own application, along a real path.
    paths = {
        "accepted": [],
        "supplement_requested": ["supplement_requested"],
        "under_review": ["under_review"],
        "approved": ["under_review", "approved"],
        "denied": ["under_review", "denied"],
        "completed": ["under_review", "approved", "completed"],
        "delivered": ["under_review", "approved", "completed", "delivered"],
        "not_accepted": ["not_accepted"],
        "withdrawn": ["withdrawn"],
    }
    for status, path in paths.items():
        number = accepted(pair)
        for to in path:
            transition(pair.hub, number, to)
        html = await (await client.get(f"/applications/{number}")).text()
        assert f'data-status="{status}"' in html, status
        assert buttons(html) == expected(Status(status), immediate=False), status
        if not buttons(html):
            assert 'id="no-moves"' in html, status
    # Written out by hand, so a wrong table or a wrong filter cannot agree with itself.
    promised = await (await client.get(f"/applications/{accepted(pair)}")).text()
    assert buttons(promised) == {
        "supplement": "supplement_requested",
        "review": "under_review",
        "reject": "not_accepted",
        "withdraw": "withdrawn",
    }
    assert confirmed(promised) == {"reject", "withdraw"}
    # Only an immediate item (即办件) may be completed straight from accepted.
    immediate = await (await client.get(f"/applications/{accepted(pair, ITEM_IMMEDIATE)}")).text()
    assert buttons(immediate)["complete"] == "completed"
    review = accepted(pair)
    transition(pair.hub, review, "under_review")
    html = await (await client.get(f"/applications/{review}")).text()
    # 踏勘 is never a plain button: it needs an inspector (the form, tested below).
    assert buttons(html) == {"approve": "approved", "deny": "denied", "withdraw": "withdrawn"}
    assert confirmed(html) == {"approve", "deny", "withdraw"}
    assert 'value="inspecting"' not in html


# -- a move ------------------------------------------------------------------------------------------


async def test_a_move_needs_a_session_and_the_csrf_token_and_is_audited(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    number = accepted(pair)
    url = f"/applications/{number}/transition"
    resp = await client.post(url, data={"to": "under_review", "csrf": "x"}, allow_redirects=False)
    assert resp.status == 401
    await login(client)
    for data in ({"to": "under_review"}, {"to": "under_review", "csrf": "forged"}):
        resp = await client.post(url, data=data, allow_redirects=False)
        assert resp.status == 403 and "安全校验未通过" in await resp.text()
    assert show(pair.hub, number)["status"] == "accepted"
    assert audit_rows(pair, "transition") == []

    csrf = await page_csrf(client, f"/applications/{number}")
    resp = await client.post(
        url, data={"to": "under_review", "note": "材料齐全，转入审查", "csrf": csrf}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/applications/{number}?done=under_review"
    shown = show(pair.hub, number)
    assert shown["status"] == "under_review" and shown["fields"]["note"] == "材料齐全，转入审查"  # type: ignore[index]
    assert audit_rows(pair, "transition") == [(OPERATOR, number, "accepted→under_review", "材料齐全，转入审查")]
    html = await (await client.get(resp.headers["Location"])).text()
    assert "办件状态已变更为「审查」" in html and 'data-status="under_review"' in html

    # 最低生活保障申请 needs an on-site inspection and no report is in: 准予许可 alone is refused, with why.
    assert 'id="override-reason"' in html
    resp = await client.post(url, data={"to": "approved", "note": "经审查符合条件", "csrf": csrf})
    assert resp.status == 400 and "需现场踏勘，尚无踏勘报告，不能准予许可" in await resp.text()
    assert show(pair.hub, number)["status"] == "under_review"
    # The decision on an explicit override: written as the CLI writes it, the reason in the audit log
    # and in the application's history, and sent down to the station like any hub change.
    resp = await client.post(
        url,
        data={"to": "approved", "note": "经审查符合条件", "override_reason": "上月已踏勘同一住址", "csrf": csrf},
        allow_redirects=False,
    )
    assert resp.status == 303
    shown = show(pair.hub, number)
    assert shown["status"] == "approved"
    assert shown["fields"]["decision"] == "准予: 经审查符合条件"  # type: ignore[index]
    assert [r[2] for r in audit_rows(pair, "transition")] == [
        "accepted→under_review",
        "under_review→approved（未经现场踏勘准予，理由：上月已踏勘同一住址）",
    ]
    events = [e["fields"] for e in shown["events"] if e["entity"] == "event"]  # type: ignore[attr-defined]
    assert events and events[-1]["note"] == "未经现场踏勘准予许可，理由：上月已踏勘同一住址"
    pair.pull()
    station_view = {str(a["number"]): a for a in commands.applications(pair.st)}
    assert station_view[number]["status"] == "approved"


async def test_a_refused_move_gives_the_reason_and_changes_nothing(client: TestClient[Any, Any], pair: Pair) -> None:
    number = accepted(pair)
    await login(client)
    csrf = await page_csrf(client, f"/applications/{number}")
    app_id = str(show(pair.hub, number)["id"])
    history = len(pair.hub.records.history(app_id))
    resp = await client.post(
        f"/applications/{number}/transition", data={"to": "approved", "note": "越级准予", "csrf": csrf}
    )
    html = await resp.text()
    assert resp.status == 400
    # The CLI's refusal, word for word, and the note kept in the form for another try.
    assert "未能变更办件状态" in html and "办件已受理，尚未审查，不能变更为「准予」" in html
    assert 'id="move-error"' in html and 'value="越级准予"' in html
    assert show(pair.hub, number)["status"] == "accepted"
    assert "decision" not in show(pair.hub, number)["fields"]  # type: ignore[operator]
    assert len(pair.hub.records.history(app_id)) == history
    assert audit_rows(pair, "transition") == []
    # An unknown status, 踏勘 without an inspector, a closed file: refused the same way.
    resp = await client.post(f"/applications/{number}/transition", data={"to": "finished", "csrf": csrf})
    assert resp.status == 400 and "没有“finished”这个状态" in await resp.text()
    transition(pair.hub, number, "under_review")
    resp = await client.post(f"/applications/{number}/transition", data={"to": "inspecting", "csrf": csrf})
    assert resp.status == 400 and "请先用 sanji hub inspect" in await resp.text()
    assert show(pair.hub, number)["status"] == "under_review"
    transition(pair.hub, number, "withdrawn")
    resp = await client.post(f"/applications/{number}/transition", data={"to": "under_review", "csrf": csrf})
    assert resp.status == 400 and "办件已撤回" in await resp.text()
    assert show(pair.hub, number)["status"] == "withdrawn"
    assert audit_rows(pair, "transition") == []
    resp = await client.post("/applications/NO-SUCH-1/transition", data={"to": "under_review", "csrf": csrf})
    assert resp.status == 404


# -- assigning an inspection -------------------------------------------------------------------------


async def test_the_inspect_form_lists_only_field_devices_and_assigns(client: TestClient[Any, Any], pair: Pair) -> None:
    field_device(pair, "360802-F01", "踏勘终端一号")
    field_device(pair, "360802-F02", "踏勘终端二号（未接入）", enrol=False)
    field_device(pair, "360802-F03", "踏勘终端三号（已吊销）")
    with pair.hub.store.transaction():
        pair.hub.store.revoke("360802-F03")
    number = accepted(pair)
    await login(client)
    page_url = f"/applications/{number}"
    # Before review there is nothing to inspect yet; an item without inspection never offers it.
    assert 'id="inspect-form"' not in await (await client.get(page_url)).text()
    plain = accepted(pair, ITEM_IMMEDIATE)
    transition(pair.hub, plain, "under_review")
    assert 'id="inspect-form"' not in await (await client.get(f"/applications/{plain}")).text()

    transition(pair.hub, number, "under_review")
    html = await (await client.get(page_url)).text()
    assert "安排现场踏勘" in html
    # Not the village (enrolled, but no field device), not the unenrolled or the revoked device.
    assert devices(html) == ["360802-F01"]
    csrf = csrf_of(html)

    # The CLI's refusals: a revoked device, a village, a past date. Nothing is written.
    yesterday = (today() - timedelta(days=1)).isoformat()
    for inspector, due, reason in (
        ("360802-F03", "", "已被吊销"),
        ("360802-T01-01", "", "不是踏勘设备"),
        ("360802-F01", yesterday, "已经过了"),
    ):
        resp = await client.post(page_url + "/inspect", data={"inspector": inspector, "due": due, "csrf": csrf})
        assert resp.status == 400 and reason in await resp.text(), inspector
    assert show(pair.hub, number)["inspections"] == [] and show(pair.hub, number)["status"] == "under_review"
    assert (
        await client.post(page_url + "/inspect", data={"inspector": "360802-F01"}, allow_redirects=False)
    ).status == 403

    due = (today() + timedelta(days=10)).isoformat()
    resp = await client.post(
        page_url + "/inspect", data={"inspector": "360802-F01", "due": due, "csrf": csrf}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == f"{page_url}?done=inspect"
    shown = show(pair.hub, number)
    assert shown["status"] == "inspecting"
    [task] = shown["inspections"]  # type: ignore[misc]
    assert task["inspector"] == "360802-F01" and task["due"] == due and task["status"] == "assigned"
    row = next(a for a in applications(pair.hub) if a["number"] == number)
    assert row["status"] == "inspecting" and row["paused"] is True
    [(user, target, detail, _)] = audit_rows(pair, "inspect")
    assert (user, target) == (OPERATOR, number)
    assert detail.startswith("under_review→inspecting") and "360802-F01" in detail and due in detail

    html = await (await client.get(resp.headers["Location"])).text()
    assert "已安排现场踏勘" in html
    # The task is open: no second assignment until its report comes; the decision buttons remain.
    assert 'id="inspect-form"' not in html and 'id="task-open"' in html
    assert buttons(html) == {"approve": "approved", "deny": "denied", "withdraw": "withdrawn"}
    resp = await client.post(page_url + "/inspect", data={"inspector": "360802-F01", "csrf": csrf})
    assert resp.status == 400 and "还没有报告" in await resp.text()
    assert len(show(pair.hub, number)["inspections"]) == 1  # type: ignore[arg-type]


# -- the operator's own password ---------------------------------------------------------------------


async def test_an_operator_changes_their_password(client: TestClient[Any, Any], pair: Pair) -> None:
    url = "/account/password"
    assert (await client.get(url, allow_redirects=False)).status == 303  # to the login page
    assert (await login(client)).status == 303
    home = await (await client.get("/")).text()
    assert 'href="/account/password"' in home  # linked from the header
    # A second PC signed in as the same operator: its session ends with the old password.
    other = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        form = await other.get(client.make_url("/login"))
        await other.post(
            client.make_url("/login"),
            data={"user": OPERATOR, "password": PASSWORD, "csrf": csrf_of(await form.text()), "next": "/"},
        )
        assert (await other.get(client.make_url("/"), allow_redirects=False)).status == 200
        old_hash = pair.hub.store.operator_hash(OPERATOR)

        fields = {"current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD}
        assert (await client.post(url, data=fields, allow_redirects=False)).status == 403  # no CSRF token
        csrf = await page_csrf(client, url)
        for sent, reason in (
            ({**fields, "current": "not-my-password"}, "当前密码不正确"),
            ({**fields, "new": "short", "again": "short"}, "至少需要 8 个字符"),
            ({**fields, "again": NEW_PASSWORD + "x"}, "两次输入的新密码不一致"),
            ({**fields, "new": PASSWORD, "again": PASSWORD}, "不能与当前密码相同"),
        ):
            resp = await client.post(url, data={**sent, "csrf": csrf})
            assert resp.status == 400 and reason in await resp.text(), reason
        assert pair.hub.store.operator_hash(OPERATOR) == old_hash
        assert [r[2] for r in audit_rows(pair, "password_failed")] == ["当前密码错误，密码未修改"]

        resp = await client.post(url, data={**fields, "csrf": csrf}, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == url + "?done=1"
        assert "sanji_session" in resp.cookies  # a fresh session replaces the one in use
        html = await (await client.get(resp.headers["Location"])).text()
        assert "密码已修改" in html and csrf_of(html) != csrf
        assert pair.hub.store.operator_hash(OPERATOR) != old_hash
        assert (
            pair.hub.store.conn.execute("SELECT COUNT(*) FROM dash_sessions WHERE user=?", (OPERATOR,)).fetchone()[0]
            == 1
        )
        assert (await other.get(client.make_url("/"), allow_redirects=False)).status == 303  # signed out
        assert audit_rows(pair, "password") == [(OPERATOR, OPERATOR, "已结束该账号的其他 1 个会话", "")]
        everything = " ".join(" ".join(map(str, r)) for r in pair.hub.store.conn.execute("SELECT * FROM dash_audit"))
        assert PASSWORD not in everything and NEW_PASSWORD not in everything
    finally:
        await other.close()

    await client.post("/logout", data={"csrf": await page_csrf(client, "/")})
    assert (await login(client)).status == 401  # the old password no longer logs in
    assert (await login(client, password=NEW_PASSWORD)).status == 303
    assert (await client.get("/", allow_redirects=False)).status == 200


async def test_guessing_the_current_password_is_throttled_like_logins(client: TestClient[Any, Any], pair: Pair) -> None:
    await login(client)
    csrf = await page_csrf(client, "/account/password")
    wrong = {"current": "guess-guess", "new": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf": csrf}
    for _ in range(5):
        assert (await client.post("/account/password", data=wrong)).status == 400
    # Now even the right current password is refused for a while, and so is a login.
    resp = await client.post("/account/password", data={**wrong, "current": PASSWORD})
    assert resp.status == 429 and "失败次数过多" in await resp.text()
    from hub.passwords import check_password

    assert check_password(PASSWORD, str(pair.hub.store.operator_hash(OPERATOR)))
    await client.post("/logout", data={"csrf": csrf})
    assert (await login(client)).status == 429
