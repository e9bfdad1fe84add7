"""The operator dashboard and /metrics at the HTTP level (no browser): sessions and CSRF, login
throttling, masking and audited reveals, conflict and quarantine decisions, the metrics format."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from hub.app import HubConfig, create_app
from protocol.codec import pack
from tests.ui.inproc import OPERATOR, PASSWORD, Pair, csrf_of, login

pytestmark = pytest.mark.slow


@pytest.fixture
def client(hub_client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    return hub_client


async def page_csrf(client: TestClient[Any, Any], path: str = "/") -> str:
    resp = await client.get(path)
    assert resp.status == 200, path
    return csrf_of(await resp.text())


async def test_pages_need_a_session(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/conflicts", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] in ("/login?next=%2Fconflicts", "/login?next=/conflicts")
    assert (await client.get("/live")).status == 401
    assert (await client.post("/quarantine/1/release", data={"csrf": "x"})).status == 401
    assert (await client.get("/healthz")).status == 200  # the sync API is untouched


async def test_session_cookie_and_security_headers(client: TestClient[Any, Any]) -> None:
    resp = await login(client)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    cookie = resp.cookies["sanji_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    page = await client.get("/")
    assert page.status == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
    html = await page.text()
    assert "http://" not in html.replace("http://127.0.0.1", "") and "https://" not in html  # nothing external
    for asset in ("/static/common/sanji.css", "/static/dashboard.js", "/static/logo.svg"):
        assert (await client.get(asset)).status == 200, asset


async def test_forms_without_the_csrf_token_are_refused(client: TestClient[Any, Any], pair: Pair) -> None:
    pair.conflict()
    # Login itself is guarded: no token, no session.
    resp = await client.post("/login", data={"user": OPERATOR, "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 403 and "sanji_session" not in resp.cookies
    await login(client)
    cid = pair.hub.store.conn.execute("SELECT id FROM conflicts WHERE field='note'").fetchone()[0]
    for data in ({}, {"csrf": "forged"}):
        resp = await client.post(f"/conflicts/{cid}/confirm", data=data, allow_redirects=False)
        assert resp.status == 403
        assert "安全校验未通过" in await resp.text()
    assert pair.hub.store.count("conflicts", "resolved=0") == 2
    resp = await client.post(
        f"/conflicts/{cid}/confirm", data={"csrf": await page_csrf(client, "/conflicts")}, allow_redirects=False
    )
    assert resp.status == 303
    assert pair.hub.store.count("conflicts", "resolved=0") == 1
    # Logging out also needs the token, and ends the session for good.
    assert (await client.post("/logout", data={}, allow_redirects=False)).status == 403
    resp = await client.post("/logout", data={"csrf": await page_csrf(client)}, allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_login_failures_are_throttled(client: TestClient[Any, Any]) -> None:
    for _ in range(5):
        resp = await login(client, password="not-the-password")
        assert resp.status == 401
        assert "用户名或密码错误" in await resp.text()
    resp = await login(client)  # the right password, but too late
    assert resp.status == 429 and "sanji_session" not in resp.cookies
    assert "登录失败次数过多" in await resp.text()
    # Paused is this user at this address: a colleague behind the same NAT is not (tests/ui/test_login_lockout.py).
    resp = await login(client, user="someone-else")
    assert resp.status == 401 and "用户名或密码错误" in await resp.text()


async def test_personal_data_is_masked_and_reveals_are_audited(client: TestClient[Any, Any], pair: Pair) -> None:
    person = pair.accept(address="兴桥镇岗塘村3组")
    pair.push()
    await login(client)
    masked_id = person["id_number"][:6] + "********" + person["id_number"][-4:]
    masked_phone = person["phone"][:3] + "****" + person["phone"][-4:]
    for path in ("/applications", f"/applications/{person['number']}", f"/applications?q={person['name']}"):
        html = await (await client.get(path)).text()
        assert person["id_number"] not in html and person["phone"] not in html, path
        assert masked_id in html, path
    detail = f"/applications/{person['number']}"
    csrf = await page_csrf(client, detail)
    resp = await client.post(detail + "/reveal", data={"csrf": csrf, "reason": ""})
    assert resp.status == 400 and "请填写查看完整信息的理由" in await resp.text()
    assert person["id_number"] not in await resp.text()
    resp = await client.post(detail + "/reveal", data={"csrf": csrf, "reason": "申请人来电核实身份"})
    html = await resp.text()
    assert resp.status == 200 and person["id_number"] in html and person["phone"] in html
    assert masked_phone not in html
    rows = pair.hub.store.conn.execute(
        "SELECT user, action, target, reason FROM dash_audit WHERE action='reveal'"
    ).fetchall()
    assert rows == [(OPERATOR, "reveal", person["number"], "申请人来电核实身份")]
    # Nothing is remembered: the next view is masked again.
    assert person["id_number"] not in await (await client.get(detail)).text()


async def test_override_writes_a_hub_change_and_refuses_going_back_a_stage(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    number = pair.conflict()
    await login(client)
    rows = dict(pair.hub.store.conn.execute("SELECT field, id FROM conflicts").fetchall())
    csrf = await page_csrf(client, "/conflicts")
    resp = await client.post(f"/conflicts/{rows['status']}/override", data={"csrf": csrf})
    assert resp.status == 409 and "不能从「审查」改回「补正」" in await resp.text()
    resp = await client.post(f"/conflicts/{rows['note']}/override", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    from hub.operations import show

    assert show(pair.hub, number)["fields"]["note"] == "请补充户口簿复印件"  # type: ignore[index]
    assert show(pair.hub, number)["status"] == "under_review"
    # The override reaches the station like any hub change, and raises no new conflict there.
    pair.pull()
    vals = pair.st.records.values(
        "application", pair.st.conn.execute("SELECT id FROM applications WHERE number=?", (number,)).fetchone()[0]
    )
    assert vals["note"] == "请补充户口簿复印件"
    resolution = pair.hub.store.conn.execute("SELECT resolution FROM conflicts WHERE id=?", (rows["note"],)).fetchone()
    assert OPERATOR in resolution[0] and "请补充户口簿复印件" in resolution[0]


async def test_quarantine_release_applies_through_the_record_path(client: TestClient[Any, Any], pair: Pair) -> None:
    number = pair.quarantine()
    await login(client)
    qid = pair.hub.store.conn.execute("SELECT id FROM quarantine").fetchone()[0]
    html = await (await client.get("/quarantine")).text()
    assert "超出站点权限" in html
    csrf = csrf_of(html)
    resp = await client.post(f"/quarantine/{qid}/reject", data={"csrf": csrf, "reason": ""})
    assert resp.status == 400 and "驳回须填写理由" in await resp.text()
    resp = await client.post(f"/quarantine/{qid}/release", data={"csrf": csrf, "reason": ""}, allow_redirects=False)
    assert resp.status == 303
    from hub.operations import show

    assert show(pair.hub, number)["fields"]["decision"] == "准予（越权）"  # type: ignore[index]
    state = pair.hub.store.conn.execute("SELECT state, note FROM quarantine WHERE id=?", (qid,)).fetchone()
    assert state[0] == "released" and OPERATOR in state[1]
    resp = await client.post(f"/quarantine/{qid}/release", data={"csrf": csrf})
    assert resp.status == 409 and "已处理" in await resp.text()


async def test_catalogue_upload_errors_are_explained(client: TestClient[Any, Any], pair: Pair) -> None:
    await login(client)
    csrf = await page_csrf(client, "/catalogue")
    resp = await client.post("/catalogue/preview", data={"csrf": csrf})
    assert resp.status == 400 and "请选择要发布的目录文件" in await resp.text()
    resp = await client.post("/catalogue/preview", data=upload(csrf, b"{not json"))
    assert resp.status == 400 and "不是有效的 UTF-8 JSON" in await resp.text()
    resp = await client.post("/catalogue/preview", data=upload(csrf, b'{"items": []}'))
    assert resp.status == 400 and "目录文件有误" in await resp.text()
    resp = await client.post("/catalogue/publish", data={"csrf": csrf, "draft": "999"})
    assert resp.status == 404
    assert pair.hub.catalogue()[0] == 1


def upload(csrf: str, content: bytes) -> FormData:
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", content, filename="catalogue.json", content_type="application/json")
    return form


def metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_in_prometheus_format(client: TestClient[Any, Any], pair: Pair) -> None:
    pair.conflict()
    pair.quarantine()
    # A forged frame over HTTP: refused with its reason, counted, timed.
    resp = await client.post(
        "/v1/sync/push",
        data=pack([b"SJF1 not a frame"]),
        headers={"Content-Type": "application/vnd.sanji.frames+msgpack"},
    )
    assert resp.status >= 400
    assert (await client.get("/v1/sync/pull")).status == 400  # no signed request header
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = metrics(await resp.text())
    assert m[("sanji_batches_total", (("result", "applied"),))] >= 2
    assert m[("sanji_batches_total", (("result", "quarantined"),))] == 1
    assert m[("sanji_batches_rejected_total", (("reason", "malformed"),))] == 1
    assert m[("sanji_changes_applied_total", ())] >= 3
    assert m[("sanji_conflicts_open", ())] == 2
    assert m[("sanji_quarantine_open", ())] == 1
    assert m[("sanji_stations", (("last_seen", "1h"), ("tier", "village")))] == 1
    assert m[("sanji_stations", (("last_seen", "never"), ("tier", "township")))] == 1
    assert m[("sanji_ingest_seconds_count", ())] == 1
    assert m[("sanji_feed_requests_total", (("outcome", "refused"),))] == 1
    # One registry per app: a second app in the same process starts from its own zero.
    other = create_app(HubConfig(folder=pair.root / "hub"))
    async with TestClient(TestServer(other)) as c2:
        m2 = metrics(await (await c2.get("/metrics")).text())
    assert m2[("sanji_ingest_seconds_count", ())] == 0


async def test_every_page_renders_with_a_busy_district(client: TestClient[Any, Any], pair: Pair) -> None:
    """Each page and filter, over conflicts, quarantine, a revoked station, a resolved conflict and a
    deferred material: the templates are strict, so a field they do not expect fails here first."""
    from hub import enrolment
    from tests.ui.conftest import ITEM_PROMISED

    pair.conflict()
    pair.quarantine()
    pair.accept(ITEM_PROMISED, deferred=["家庭收入情况声明"])
    pair.push()
    enrolment.register(pair.hub, station="360802-F01", name="踏勘终端", tier="field")
    enrolment.register(pair.hub, station="360802-S02", name="白塘街道便民服务中心", tier="street")
    await login(client)
    csrf = await page_csrf(client, "/stations")
    assert (await client.post("/stations/360802-S02/revoke", data={"csrf": csrf, "reason": "设备报废"})).status == 200
    cid = pair.hub.store.conn.execute("SELECT id FROM conflicts WHERE field='note'").fetchone()[0]
    assert (await client.post(f"/conflicts/{cid}/confirm", data={"csrf": csrf})).status == 200
    numbers = [r[0] for r in pair.hub.store.conn.execute("SELECT number FROM applications")]
    codes = [s.code for s in pair.hub.store.stations()]
    paths = [
        "/",
        "/live",
        "/stations",
        "/conflicts",
        "/conflicts?all=1",
        "/quarantine",
        "/quarantine?all=1",
        "/catalogue",
        "/audit",
        "/applications?status=bogus",
        "/applications?due=overdue",
        "/applications?due=soon",
        "/applications?due=open",
        "/applications?due=bogus",
        "/applications?q=%25_",
        "/applications?station=360802-T01-01&status=accepted",
    ]
    paths += [f"/stations/{c}" for c in codes] + [f"/applications/{n}" for n in numbers]
    for path in paths:
        resp = await client.get(path)
        assert resp.status == 200, (path, (await resp.text())[:500])
    assert (await client.get("/applications/no-such-number")).status == 404
    assert (await client.get("/stations/no-such-station")).status == 404
    # Enrolment form: problems are listed on the page, nothing is registered.
    resp = await client.post("/stations/enrol", data={"csrf": csrf, "code": "", "name": "", "tier": "village"})
    text = await resp.text()
    assert resp.status == 400 and "请填写站点编码" in text and "须选择所属镇" in text
