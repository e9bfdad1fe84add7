"""The public tracking page in process: an application accepted at a village, pushed and decided, looked
up by its code through the hub's real app (aiohttp's TestServer). What the hub keeps of the code, what
the feed carries, who may write one, what a page shows and what it never shows."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import operations, tracking
from hub.app import HubConfig, create_app
from hub.appkeys import HUB
from node.track_notice import notice
from sync.tracking import draw
from tests.conftest import World

TOWNSHIP_ITEM = "360802-0010"  # decided by the township: the feed carries it there
DISTRICT_ITEM = "360802-0004"  # 最低生活保障申请: one deferrable material, an inspection
NEUTRAL = "暂无此件信息：如刚在村站受理，请待上传后再查询"


@pytest.fixture
def town(make_world: Callable[..., World]) -> World:
    return make_world(("T1", "township", ""), ("T1-V1", "village", "T1"), ("T1-V2", "village", "T1"))


@pytest.fixture
async def client(town: World) -> AsyncIterator[TestClient]:
    (town.hub.folder / "track.json").write_text(json.dumps({"burst": 1000, "per_minute": 6000}))
    app = create_app(HubConfig(folder=town.hub.folder))
    async with TestClient(TestServer(app)) as c:
        yield c


def personal(town: World, st_code: str) -> list[str]:
    """Every applicant's name, ID number, phone and address the village holds."""
    st = town.get(st_code)
    out = []
    for (app_id,) in st.conn.execute("SELECT id FROM applications"):
        v = st.records.values("application", str(app_id))
        out += [str(v[k]) for k in ("applicant_name", "applicant_id", "applicant_phone", "address") if v.get(k)]
    return out


async def test_before_sync_neutral_after_sync_the_status_and_after_a_decision_the_new_one(
    town: World, client: TestClient
) -> None:
    v1 = town.get("T1-V1")
    made = town.accept(v1, DISTRICT_ITEM, deferred=["家庭收入情况声明"])
    code = str(made["tracking_code"])
    assert re.fullmatch(r"[2-9A-HJKMNP-TV-Z]{5}(-[2-9A-HJKMNP-TV-Z]{5}){2}", code)

    unknown = draw(b"\x01" * 15)
    for c in (code, unknown):  # not synced yet: the same neutral answer as a code nobody was given
        resp = await client.get(f"/v1/track/{c}")
        assert resp.status == 404
        assert await resp.json() == {"error": "not_found", "message": NEUTRAL}
        page = await client.get(f"/track/{c}")
        assert page.status == 404 and NEUTRAL in await page.text()

    town.push(v1)
    resp = await client.get(f"/v1/track/{code.lower().replace('-', '')}")
    assert resp.status == 200
    got = await resp.json()
    assert set(got) == {"item", "station", "status", "history", "due_date", "paused", "outstanding", "received_at"}
    assert got["item"] == "最低生活保障申请"
    assert got["station"] == "T1-V1 测试站"
    assert got["status"] == "受理" and [h["status"] for h in got["history"]] == ["受理"]
    assert got["due_date"] == made["due_date"] and got["paused"] is False
    assert [o["material"] for o in got["outstanding"]] == ["家庭收入情况声明"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", got["received_at"])
    html = await (await client.get(f"/track/{code}")).text()
    assert "最低生活保障申请" in html and f"区局已于 {got['received_at']} 签收" in html and "家庭收入情况声明" in html

    operations.transition(town.hub, str(made["number"]), "under_review")
    got = await (await client.get(f"/v1/track/{code}")).json()
    assert got["status"] == "审查" and [h["status"] for h in got["history"]] == ["受理", "审查"]
    assert unknown != code and (await client.get(f"/v1/track/{unknown}")).status == 404


async def test_the_hub_keeps_only_a_keyed_hash_and_no_feed_carries_the_code(town: World, client: TestClient) -> None:
    v1, t1, v2 = town.get("T1-V1"), town.get("T1"), town.get("T1-V2")
    codes = [str(town.accept(v1, TOWNSHIP_ITEM)["tracking_code"]) for _ in range(3)]
    town.push(v1)
    town.pull(t1)
    town.pull(v2)
    town.hub.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for code in codes:
        assert (await client.get(f"/v1/track/{code}")).status == 200
        compact = code.replace("-", "")
        # Not in the hub's database file in any form a station wrote it, nor at the township that
        # decides the item and received the application through its feed.
        for path in (town.hub.folder / "hub.db", t1.folder / "node.db", v2.folder / "node.db"):
            raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
            assert len(raw) > 10_000, path
            assert code.encode() not in raw and compact.encode() not in raw, path
    rows = town.hub.store.conn.execute("SELECT hash FROM tracking_codes").fetchall()
    assert len(rows) == 3 and all(re.fullmatch(r"[0-9a-f]{64}", r[0]) for r in rows)
    for (app_id,) in t1.conn.execute("SELECT id FROM applications"):
        assert t1.records.values("application", str(app_id))["tracking"] == ""


async def test_only_the_accepting_station_writes_a_code_and_only_at_acceptance(town: World) -> None:
    v1 = town.get("T1-V1")
    made = town.accept(v1, TOWNSHIP_ITEM)
    app_id = str(made["id"])
    with v1.transaction():  # a station running modified software adds a second code later
        v1.write_unchecked("application", app_id, {"tracking": draw(b"\x02" * 15)}, {})
    (ack,) = town.push(v1)
    assert ack.applied == 1 and ack.quarantined == 1
    held = town.hub.store.conn.execute("SELECT code FROM quarantine").fetchall()
    assert held == [("not_a_command",)]
    # Its own admission check refuses the same write before anything is written.
    with pytest.raises(Exception, match="受理后没有命令可以更改"), v1.transaction():
        v1.write("application", app_id, {"tracking": draw(b"\x03" * 15)}, {})


async def test_a_malformed_code_is_a_400_and_an_overlong_path_a_4xx(client: TestClient) -> None:
    for bad in ("ABC", "ABCDE-FGHJK-MNPQ0", "%E6%9F%A5%E8%AF%A2", "..%2F..%2Fetc%2Fpasswd", "A" * 300, "%00"):
        for route in ("/v1/track/", "/track/"):
            resp = await client.get(route + bad)
            assert 400 <= resp.status < 500, (route, bad, resp.status)
    resp = await client.get("/v1/track/ABC")
    assert resp.status == 400 and (await resp.json())["error"] == "malformed"
    assert (await client.get("/track/" + "B" * 9000)).status in (400, 404, 414, 431)


async def test_lookups_are_counted_in_metrics(town: World, client: TestClient) -> None:
    v1 = town.get("T1-V1")
    code = str(town.accept(v1, TOWNSHIP_ITEM)["tracking_code"])
    town.push(v1)
    await client.get(f"/v1/track/{code}")
    await client.get(f"/track/{draw(bytes(15))}")
    await client.get("/v1/track/nope")
    text = await (await client.get("/metrics")).text()
    assert 'sanji_track_lookups_total{outcome="found"} 1.0' in text
    assert 'sanji_track_lookups_total{outcome="unknown"} 1.0' in text
    assert 'sanji_track_lookups_total{outcome="malformed"} 1.0' in text


async def test_the_form_sends_the_citizen_to_the_page_and_links_honour_a_proxy_prefix(client: TestClient) -> None:
    form = await client.get("/track", headers={"X-Forwarded-Prefix": "/zwfw/sanji"})
    html = await form.text()
    assert form.status == 200 and 'action="/zwfw/sanji/track"' in html and 'href="/zwfw/sanji/static/track.css"' in html
    assert '<label for="code">' in html and 'lang="zh-CN"' in html
    hostile = await (await client.get("/track", headers={"X-Forwarded-Prefix": '/"><script>'})).text()
    assert "<script>" not in hostile and 'action="/track"' in hostile
    code = draw(bytes(range(15)))
    go = await client.get(
        "/track",
        params={"code": code.lower().replace("-", " ")},
        headers={"X-Forwarded-Prefix": "/zwfw"},
        allow_redirects=False,
    )
    assert go.status == 303 and go.headers["Location"] == f"/zwfw/track/{code}"
    bad = await client.get("/track", params={"code": "12345"})
    assert bad.status == 400 and 'role="alert"' in await bad.text()
    assert (await client.get("/static/track.css")).status == 200


async def test_a_configured_base_url_sets_the_links(town: World) -> None:
    (town.hub.folder / "track.json").write_text(json.dumps({"base_url": "https://zwfw.example.cn/jzq/"}))
    async with TestClient(TestServer(create_app(HubConfig(folder=town.hub.folder)))) as c:
        html = await (await c.get("/track")).text()
    assert 'action="/jzq/track"' in html


async def test_too_many_lookups_from_one_address_get_429_with_retry_after(town: World) -> None:
    (town.hub.folder / "track.json").write_text(json.dumps({"burst": 5, "per_minute": 10}))
    async with TestClient(TestServer(create_app(HubConfig(folder=town.hub.folder)))) as c:
        statuses = [(await c.get(f"/v1/track/{draw(bytes([i]) * 15)}")).status for i in range(8)]
        assert statuses == [404] * 5 + [429] * 3
        resp = await c.get(f"/track/{draw(bytes(15))}")
        assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 6
        # Behind a proxy on this machine, another citizen is another address.
        other = await c.get(f"/v1/track/{draw(bytes(15))}", headers={"X-Forwarded-For": "203.0.113.9"})
        assert other.status == 404


async def test_a_closed_application_stays_trackable_for_the_retention_then_is_purged(town: World) -> None:
    v1 = town.get("T1-V1")
    made = town.accept(v1, TOWNSHIP_ITEM)
    town.push(v1)
    code = str(made["tracking_code"])
    operations.transition(town.hub, str(made["number"]), "withdrawn")
    closed = tracking.closed_ms(town.hub.records.load("application", str(made["id"]))["status"])
    assert closed is not None  # the test world's clock: March 2026
    days_since = (town.hub.clock() - closed) // tracking.DAY_MS
    (town.hub.folder / "track.json").write_text(json.dumps({"retention_days": 180}))
    async with TestClient(TestServer(create_app(HubConfig(folder=town.hub.folder)))) as c:
        # The app runs on the wall clock: months after the test world's March, past 180 days.
        wall_days = (c.server.app[HUB].clock() - closed) // tracking.DAY_MS
        assert (await c.get(f"/v1/track/{code}")).status == (200 if wall_days <= 180 else 404)
    (town.hub.folder / "track.json").write_text(json.dumps({"retention_days": 3650}))
    async with TestClient(TestServer(create_app(HubConfig(folder=town.hub.folder)))) as c:
        assert (await c.get(f"/v1/track/{code}")).status == 200  # within ten years
        hub = c.server.app[HUB]
        assert tracking.purge_stale(hub, now_ms=closed + 179 * tracking.DAY_MS, retention_days=180) == 0
        assert tracking.purge_stale(hub, now_ms=closed + 181 * tracking.DAY_MS, retention_days=180) == 1
        assert (await c.get(f"/v1/track/{code}")).status == 404  # gone, whatever the retention says now
        assert hub.store.conn.execute("SELECT COUNT(*) FROM tracking_codes").fetchone()[0] == 0
    assert days_since == 0


async def test_no_answer_ever_carries_personal_data(town: World, client: TestClient) -> None:
    v1, v2 = town.get("T1-V1"), town.get("T1-V2")
    codes = []
    for st in (v1, v2):
        for item in (TOWNSHIP_ITEM, DISTRICT_ITEM, TOWNSHIP_ITEM):
            codes.append(str(town.accept(st, item, note="申请人备注：家住测试路1号")["tracking_code"]))
        town.push(st)
    secret = personal(town, "T1-V1") + personal(town, "T1-V2") + ["申请人备注"]
    assert len(secret) >= 6 * 4
    answers = []
    for code in codes:
        for route in ("/track/", "/v1/track/"):
            resp = await client.get(route + code)
            assert resp.status == 200
            answers.append(await resp.text())
    for text in answers:
        for value in secret:
            assert value not in text


def test_the_notice_of_a_station_without_any_hub_address_prints_the_code_alone(tmp_path: Path, town: World) -> None:
    v1 = town.get("T1-V1")
    made = town.accept(v1, TOWNSHIP_ITEM)
    n = notice(v1, str(made["id"]))
    assert n.code == made["tracking_code"] and n.url == "" and str(n.qr_svg) == ""
    (v1.folder / "track.json").write_text(json.dumps({"base_url": "https://zwfw.example.cn/jzq/"}))
    n = notice(v1, str(made["id"]))
    assert n.url == f"https://zwfw.example.cn/jzq/track/{made['tracking_code']}" and "<svg" in n.qr_svg


def test_the_nightly_job_purges_stale_tracking_hashes(town: World) -> None:
    from hub import nightly

    v1 = town.get("T1-V1")
    made = town.accept(v1, TOWNSHIP_ITEM)
    kept = town.accept(v1, TOWNSHIP_ITEM)
    town.push(v1)
    operations.transition(town.hub, str(made["number"]), "withdrawn")
    town.clock.advance(181 * tracking.DAY_MS)
    report = nightly.run(town.hub, do_backup=False)
    assert report["report"]["tracking_purged"] == 1
    left = town.hub.store.conn.execute("SELECT application FROM tracking_codes").fetchall()
    assert left == [(str(kept["id"]),)]
