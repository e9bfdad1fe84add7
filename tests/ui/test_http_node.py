"""The station UI at the HTTP level (no browser), with the hub unreachable throughout: the server is
the source of truth for every check, forms need the page's CSRF token, only loopback names are
answered, and accepting, themes, workflow moves, reveals, "sync now" and USB export all work offline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.server import create_app
from tests.ui.conftest import ITEM_PROMISED, make_id, wrong_check
from tests.ui.inproc import Pair, csrf_of

pytestmark = pytest.mark.slow

FORM_0004 = {"m0_0": "submitted", "m0_1": "submitted", "m0_2": "deferred", "m0_3": "submitted"}


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(pair.root / "village", 3600.0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def csrf(client: TestClient[Any, Any], path: str = "/") -> str:
    resp = await client.get(path)
    assert resp.status == 200, path
    return csrf_of(await resp.text())


def applicant(**kw: str) -> dict[str, str]:
    return {
        "name": "测试申请人乙",
        "id_number": make_id(402),
        "phone": "13907960402",
        "address": "岗塘村2组",
        "note": "",
        **kw,
    }


async def test_server_checks_every_field_and_shows_each_problem_in_place(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    token = await csrf(client, f"/accept/item/{ITEM_PROMISED}")
    bad = applicant(id_number=wrong_check(make_id(402)), phone="12907960402", name="")
    resp = await client.post(f"/accept/item/{ITEM_PROMISED}", data={"csrf": token, **bad, "m0_0": "submitted"})
    html = await resp.text()
    assert resp.status == 400
    assert '<div class="err" id="id_number-err" role="alert">身份证号码校验位不符，请核对最后一位</div>' in html
    assert '<div class="err" id="phone-err" role="alert">手机号码第二位应为3至9，请核对</div>' in html
    assert "请填写申请人姓名" in html
    assert "缺少必要材料" in html  # the materials not ticked, in the item's own section
    assert f'value="{bad["id_number"]}"' in html  # what was typed stays, to be corrected
    assert "本次未受理" in html
    assert pair.st.conn.execute("SELECT COUNT(*) FROM applications").fetchone()[0] == 0
    # A material that may not be deferred cannot be sent as deferred by a hand-made form either.
    resp = await client.post(
        f"/accept/item/{ITEM_PROMISED}", data={"csrf": token, **applicant(), **FORM_0004, "m0_0": "deferred"}
    )
    assert resp.status == 400 and "缺少必要材料「居民身份证」" in await resp.text()


async def test_accepting_offline_gives_a_masked_receipt_pending_upload(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    token = await csrf(client, "/accept")
    resp = await client.post(
        f"/accept/item/{ITEM_PROMISED}", data={"csrf": token, **applicant(), **FORM_0004}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"].startswith("/receipt?n=360802-T01-01-")
    receipt = await (await client.get(resp.headers["Location"])).text()
    row = pair.st.conn.execute("SELECT number, due_date, applicant_id FROM applications").fetchone()
    assert row[0] in receipt and row[1] in receipt
    assert row[2] == make_id(402) and make_id(402) not in receipt and "13907960402" not in receipt
    assert make_id(402)[:6] + "********" + make_id(402)[-4:] in receipt
    assert "家庭收入情况声明：请于" in receipt and 'data-upload="local"' in receipt
    assert "待上传区行政审批局" in receipt


async def test_a_theme_accepts_each_item_with_the_theme_code(client: TestClient[Any, Any], pair: Pair) -> None:
    form: dict[str, str] = {"csrf": await csrf(client), **applicant()}
    cat = pair.st.catalogue().catalogue
    for i, code in enumerate(cat.themes["T16"].items):
        for j, _ in enumerate(cat.items[code].materials):
            form[f"m{i}_{j}"] = "submitted"
    resp = await client.post("/accept/theme/T16", data=form, allow_redirects=False)
    assert resp.status == 303
    rows = pair.st.conn.execute("SELECT item, theme FROM applications ORDER BY number").fetchall()
    assert rows == [(code, "T16") for code in cat.themes["T16"].items]
    receipt = await (await client.get(resp.headers["Location"])).text()
    assert "困难群众救助" in receipt and receipt.count('class="app-number"') == 3


async def test_forms_need_the_token_and_only_loopback_is_answered(client: TestClient[Any, Any], pair: Pair) -> None:
    resp = await client.post(f"/accept/item/{ITEM_PROMISED}", data={**applicant(), **FORM_0004})
    assert resp.status == 403 and "安全校验未通过" in await resp.text()
    assert (await client.post("/sync", data={"csrf": "guess"})).status == 403
    assert pair.st.conn.execute("SELECT COUNT(*) FROM applications").fetchone()[0] == 0
    # A DNS-rebinding page reaches 127.0.0.1 under its own name: refused before any handler runs.
    resp = await client.get("/", headers={"Host": "attacker.example:8710"})
    assert resp.status == 421
    assert (await client.get("/", headers={"Host": "localhost:8710"})).status == 200
    page = await client.get("/")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("/static/common/sanji.css", "/static/station.js", "/static/station.css"):
        assert (await client.get(asset)).status == 200, asset


async def test_moves_reveals_sync_and_export_offline(client: TestClient[Any, Any], pair: Pair, tmp_path: Path) -> None:
    number = str(pair.accept()["number"])
    detail = await (await client.get(f"/applications/{number}")).text()
    token = csrf_of(detail)
    # An immediate item at a village: the station may complete it at the window, or refuse it, etc.
    assert 'data-move="complete"' in detail and 'data-move="review"' not in detail
    resp = await client.post(
        f"/applications/{number}/transition",
        data={"csrf": token, "to": "completed", "note": "当场办结"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert (
        pair.st.conn.execute("SELECT status FROM applications WHERE number=?", (number,)).fetchone()[0] == "completed"
    )
    resp = await client.post(f"/applications/{number}/transition", data={"csrf": token, "to": "accepted"})
    assert resp.status == 409 and "未能变更状态" in await resp.text()

    resp = await client.post(f"/applications/{number}/reveal", data={"csrf": token, "staff": "", "reason": "核对"})
    assert resp.status == 400
    resp = await client.post(
        f"/applications/{number}/reveal", data={"csrf": token, "staff": "王芳", "reason": "核对申请人身份证原件"}
    )
    assert make_id(1) in await resp.text()
    assert pair.st.conn.execute("SELECT staff, target, reason FROM ui_audit").fetchall() == [
        ("王芳", number, "核对申请人身份证原件")
    ]

    resp = await client.post("/sync", data={"csrf": token, "back": f"/applications/{number}"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/applications/{number}?sync=offline"
    page = await (await client.get(resp.headers["Location"])).text()
    assert "暂时连不上区行政审批局" in page and 'data-online="no"' in page
    status = await (await client.get("/status.json")).json()
    assert status["online"] is False and status["pending"] == 2

    out = tmp_path / "stick"
    resp = await client.post("/export", data={"csrf": token, "folder": str(out)})
    assert resp.status == 200 and "已写出" in await resp.text()
    assert len(list(out.glob("*.sjb"))) >= 1
    resp = await client.post("/export", data={"csrf": token, "folder": "/proc/forbidden"})
    assert resp.status == 400 and "无法写入" in await resp.text()


async def test_every_page_renders(client: TestClient[Any, Any], pair: Pair) -> None:
    """Every item and theme form this tier may use, every list filter, every application and receipt."""
    pair.accept(ITEM_PROMISED, deferred=["家庭收入情况声明"])
    number = str(pair.accept()["number"])
    commands_paths = [
        "/",
        "/accept",
        "/accept?q=养老",
        "/accept?q=zzz",
        "/applications",
        "/applications?status=bogus",
        "/applications?due=soon",
        "/applications?q=测试",
        "/export",
        "/status.json",
    ]
    cat = pair.st.catalogue().catalogue
    commands_paths += [f"/accept/item/{i.code}" for i in cat.items_for_tier("village")]
    commands_paths += [f"/accept/theme/{t}" for t in ("T09", "T13", "T15", "T16", "T17")]
    for n in [r[0] for r in pair.st.conn.execute("SELECT number FROM applications")]:
        commands_paths += [f"/applications/{n}", f"/receipt?n={n}"]
    for path in commands_paths:
        resp = await client.get(path)
        assert resp.status == 200, (path, (await resp.text())[:500])
    assert (await client.get("/accept/item/360802-0042")).status == 404  # a district-only item
    assert (await client.get("/accept/theme/T01")).status == 404
    assert (await client.get("/receipt")).status == 400
    assert (await client.get("/receipt?n=nope")).status == 404
    assert (await client.get(f"/applications/{number}x")).status == 404


async def test_an_inspection_item_needs_the_address_and_says_so_in_place(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    # 最低生活保障申请 needs an on-site inspection (issue 14): the address is where the inspector goes.
    page = await (await client.get(f"/accept/item/{ITEM_PROMISED}")).text()
    assert "该事项需现场踏勘，地址即踏勘地点" in page and "data-site" in page
    token = csrf_of(page)
    resp = await client.post(
        f"/accept/item/{ITEM_PROMISED}", data={"csrf": token, **applicant(address=""), **FORM_0004}
    )
    html = await resp.text()
    assert resp.status == 400
    assert '<div class="err" id="address-err" role="alert">该事项需现场踏勘，请填写地址（踏勘地点）</div>' in html
    assert pair.st.conn.execute("SELECT COUNT(*) FROM applications").fetchone()[0] == 0
    resp = await client.post(
        f"/accept/item/{ITEM_PROMISED}", data={"csrf": token, **applicant(), **FORM_0004}, allow_redirects=False
    )
    assert resp.status == 303
