"""A field device's screens at the HTTP level, offline: the inspector's task list (this device's tasks
only, phones masked), the report form posted with generated photos, a drawn signature and GPS, every
refusal shown again with the reason and the input kept, the upload limits, and the device's photos
served only when one of its reports names them."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import operations
from hub.inspection import assign
from node import blobs, inspection, purge
from node.server import create_app
from node.station import Station
from node.ui.keys import UPLOAD_LIMIT
from node.ui.report import MAX_UPLOAD_BYTES
from node.ui.uploads import STAGING
from protocol.blob import MAX_BLOB_BYTES
from replica.ids import now_ms
from tests.conftest import World
from tests.ui.images import jpeg_like, png, sha256
from tests.ui.inproc import DEAD_HUB, csrf_of

pytestmark = pytest.mark.slow

ITEM = "360802-0004"  # 最低生活保障申请: needs an on-site inspection
TOWNSHIP, VILLAGE, FIELD, OTHER = "360802-T01", "360802-T01-05", "360802-F01", "360802-F02"
PHONE, OTHER_PHONE = "13900000731", "13900000732"


@dataclass
class Scene:
    world: World
    village: Station
    field: Station
    task: str
    number: str
    other_number: str


@pytest.fixture
def scene(make_world: Callable[..., World]) -> Scene:
    """Two applications under review at the hub, one inspected by this device and one by another."""
    world = make_world(
        (TOWNSHIP, "township", ""), (VILLAGE, "village", TOWNSHIP), (FIELD, "field", ""), (OTHER, "field", "")
    )
    village, field = world.get(VILLAGE), world.get(FIELD)
    ours = world.accept(village, ITEM, address="兴桥镇塅口村3组", phone=PHONE)
    theirs = world.accept(village, ITEM, address="兴桥镇塅口村5组", phone=OTHER_PHONE)
    world.push(village)
    for app in (ours, theirs):
        operations.transition(world.hub, str(app["number"]), "under_review")
    task = str(assign(world.hub, str(ours["number"]), FIELD)["task"])
    assign(world.hub, str(theirs["number"]), OTHER)
    world.pull(field)
    world.pull(village)
    for st in (field, village):
        with st.transaction():
            st.meta.set("hub_url", DEAD_HUB)  # offline throughout
    return Scene(world, village, field, task, str(ours["number"]), str(theirs["number"]))


@contextlib.asynccontextmanager
async def ui(folder: Path, *, limit: int | None = None) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(folder, 3600.0)
    if limit is not None:
        app[UPLOAD_LIMIT] = limit
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def client(scene: Scene) -> AsyncIterator[TestClient[Any, Any]]:
    async with ui(scene.field.folder) as c:
        yield c


async def token(client: TestClient[Any, Any], path: str) -> tuple[str, str]:
    resp = await client.get(path)
    assert resp.status == 200, path
    html = await resp.text()
    return csrf_of(html), html


def signature_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def form(
    csrf: str | None,
    *,
    photos: list[tuple[str, bytes]] = (),
    signature_file: bytes | None = None,  # type: ignore[assignment]
    kept: list[str] = (),
    **fields: str,
) -> aiohttp.FormData:  # type: ignore[assignment]
    data = aiohttp.FormData()
    if csrf is not None:
        data.add_field("csrf", csrf)
    for name, value in fields.items():
        data.add_field(name, value)
    for sha in kept:
        data.add_field("kept_photo", sha)
    for name, content in photos:
        kind = "image/png" if content.startswith(b"\x89PNG") else "image/jpeg"
        data.add_field("photos", content, filename=name, content_type=kind)
    if signature_file is not None:
        data.add_field("signature_file", signature_file, filename="scan.png", content_type="image/png")
    return data


GOOD = {
    "result": "rectify",
    "findings": "房屋为土木结构，屋顶漏雨，需整改后复核",
    "lat": "27.116700",
    "lon": "114.983300",
    "acc": "12",
}


def outgoing(st: Station) -> int:
    return st.meta.int("seq")


async def test_task_list_shows_this_devices_tasks_only_with_phones_masked(
    client: TestClient[Any, Any], scene: Scene
) -> None:
    home = await client.get("/", allow_redirects=False)
    assert home.status == 303 and home.headers["Location"] == "/tasks"  # a field device's work is its tasks
    resp = await client.get("/tasks")
    html = await resp.text()
    assert resp.status == 200
    rows = re.findall(r'<tr data-task="([^"]+)" data-status="([^"]+)" data-number="([^"]+)"', html)
    assert rows == [(scene.task, "assigned", scene.number)]
    assert scene.other_number not in html  # another inspector's task
    assert PHONE not in html and "139****0731" in html
    assert "兴桥镇塅口村3组" in html and "最低生活保障" in html
    assert f'href="/tasks/{scene.task}" data-report-link' in html
    assert 'href="/accept"' not in html and 'id="nav-tasks"' in html  # inspectors accept nothing here
    # The village holds both tasks (they are on its applications) but inspects neither.
    assert scene.village.conn.execute("SELECT COUNT(*) FROM records WHERE entity='task'").fetchone()[0] == 2
    async with ui(scene.village.folder) as village:
        vhtml = await (await village.get("/tasks")).text()
        assert 'id="no-tasks"' in vhtml and scene.number not in vhtml
        assert 'href="/accept"' in await (await village.get("/")).text()


async def test_report_with_three_photos_a_drawn_signature_and_gps(client: TestClient[Any, Any], scene: Scene) -> None:
    csrf, html = await token(client, f"/tasks/{scene.task}")
    assert 'id="report-form"' in html and 'enctype="multipart/form-data"' in html
    assert 'accept="image/*" capture' in html and 'id="sig-canvas"' in html and 'name="signature_file"' in html
    for value, label in (("pass", "合格"), ("fail", "不合格"), ("rectify", "需整改")):
        assert f'value="{value}" id="result-{value}" ><span>{label}</span>' in html
    checklist = inspection.tasks(scene.field)[0]["checklist"]
    assert len(checklist) >= 4 and all(line in html for line in checklist)
    # Over aiohttp's default 1 MiB body: the route's own limit lets a real photo through.
    shots = [
        ("IMG_0001.png", png(700, 700, noise=1)),
        ("IMG_0002.png", png(64, 48, (30, 120, 200))),
        ("IMG_0003.jpg", jpeg_like(3000)),
    ]
    sig = png(300, 100, (255, 255, 255))
    resp = await client.post(
        f"/tasks/{scene.task}/report",
        allow_redirects=False,
        data=form(csrf, photos=shots, signature_png=signature_url(sig), check1="yes", **GOOD),
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == f"/tasks/{scene.task}?done=report"

    rep = scene.field.records.values("report", scene.task)
    assert rep["photos"] == [sha256(b) for _, b in shots]
    assert rep["signature"] == sha256(sig)
    assert rep["result"] == "rectify" and rep["findings"] == GOOD["findings"]
    assert rep["gps"] == [27.1167, 114.9833, 12.0] and not rep.get("gps_flag")
    assert rep["checklist"] == {line: i == 0 for i, line in enumerate(checklist)}  # line 1 overridden to yes
    assert scene.field.records.values("task", scene.task)["status"] == "done"
    assert {sha for sha, _ in blobs.pending(scene.field)} == {*rep["photos"], rep["signature"]}  # type: ignore[misc]

    page = await (await client.get(resp.headers["Location"])).text()
    assert 'id="saved"' in page and 'id="report-form"' not in page
    assert '<span id="photo-count">3</span>' in page and 'data-state="pending"' in page and "等待同步" in page
    assert page.count('<img src="/blobs/') == 4  # three photos and the signature
    assert "需整改" in page and GOOD["findings"] in page
    for (_, data), kind in zip(shots, ("image/png", "image/png", "image/jpeg"), strict=True):
        got = await client.get(f"/blobs/{sha256(data)}")
        assert got.status == 200 and got.headers["Content-Type"] == kind
        assert got.headers["X-Content-Type-Options"] == "nosniff" and await got.read() == data
    listed = await (await client.get("/tasks")).text()
    assert f'data-task="{scene.task}" data-status="done"' in listed
    assert '照片待传 <strong id="photos-pending">4</strong>' in listed  # the status bar: not at the hub yet
    assert (await (await client.get("/status.json")).json())["photos_pending"] == 4

    blobs.mark_held(scene.field, [*rep["photos"], rep["signature"]])  # type: ignore[list-item]
    page = await (await client.get(f"/tasks/{scene.task}")).text()
    assert 'id="blob-state" data-state="held"' in page and "照片和签名：已送达区局" in page
    assert '照片待传 <strong id="photos-pending">0</strong>' in page


async def test_refusals_come_back_with_the_reason_and_the_input_kept(
    client: TestClient[Any, Any], scene: Scene
) -> None:
    path = f"/tasks/{scene.task}/report"
    csrf, _ = await token(client, f"/tasks/{scene.task}")
    seq = outgoing(scene.field)
    shots = [("a.png", png(20, 20, (1, 2, 3))), ("b.png", png(20, 20, (4, 5, 6)))]

    resp = await client.post(path, data=form(csrf, photos=shots, **{**GOOD, "findings": "  "}))
    html = await resp.text()
    assert resp.status == 400 and "未能保存踏勘报告" in html and "--finding" in html
    assert '<div class="err" id="findings-err" role="alert">请填写现场踏勘情况</div>' in html
    assert 'value="27.116700"' in html and 'value="114.983300"' in html and 'value="12"' in html
    assert 'value="rectify" id="result-rectify" checked>' in html
    kept = re.findall(r'name="kept_photo" value="([0-9a-f]{64})" checked', html)
    assert kept == [sha256(b) for _, b in shots]  # the photos need not be taken again

    resp = await client.post(path, data=form(csrf, **{**GOOD, "lat": "999", "lon": "999"}))
    html = await resp.text()
    assert resp.status == 400 and "超出范围（纬度 ±90，经度 ±180）" in html
    assert "定位无效" in html and GOOD["findings"] in html and 'value="999"' in html

    staged = sorted(p for p in (scene.field.folder / STAGING).rglob("*") if p.is_file())
    assert len(staged) == 2
    resp = await client.post(path, data=form(None, photos=[("c.png", png(20, 20, (7, 8, 9)))], **GOOD))
    html = await resp.text()
    assert resp.status == 403 and "安全校验未通过" in html and "报告未保存" in html
    assert GOOD["findings"] in html and 'value="27.116700"' in html  # a stale page loses no text
    assert csrf_of(html) == csrf  # and comes back with a token that works
    assert sorted(p for p in (scene.field.folder / STAGING).rglob("*") if p.is_file()) == staged  # no file kept
    assert outgoing(scene.field) == seq and not scene.field.records.values("report", scene.task)

    # The kept photos go in with the corrected form, with no upload.
    resp = await client.post(path, data=form(csrf, kept=kept, **GOOD), allow_redirects=False)
    assert resp.status == 303
    assert scene.field.records.values("report", scene.task)["photos"] == kept
    assert not any(p.is_file() for p in (scene.field.folder / STAGING).rglob("*"))  # used, so cleared

    resp = await client.post(path, data=form(csrf, **{**GOOD, "findings": "第二次踏勘"}))
    html = await resp.text()
    assert resp.status == 409 and "该任务已有踏勘报告" in html and "已经有报告了" in html
    assert "第二次踏勘" in html  # what was typed is still there to copy
    assert scene.field.records.values("report", scene.task)["findings"] == GOOD["findings"]


async def test_a_photo_over_the_cap_is_named_and_the_others_kept(client: TestClient[Any, Any], scene: Scene) -> None:
    csrf, _ = await token(client, f"/tasks/{scene.task}")
    small = png(30, 30, (9, 9, 9))
    big = b"\xff\xd8\xff" + b"\0" * MAX_BLOB_BYTES
    resp = await client.post(
        f"/tasks/{scene.task}/report", data=form(csrf, photos=[("small.png", small), ("DSC_big.jpg", big)], **GOOD)
    )
    html = await resp.text()
    assert resp.status == 400 and "「DSC_big.jpg」" in html and "超过 10 MiB 的上限" in html
    assert str(scene.field.folder) not in html  # no temporary paths on the page
    assert re.findall(r'name="kept_photo" value="([0-9a-f]{64})"', html) == [sha256(small)]
    assert not scene.field.records.values("report", scene.task)


async def test_a_body_over_the_upload_limit_gets_a_413_page(scene: Scene) -> None:
    assert MAX_UPLOAD_BYTES > (inspection.MAX_PHOTOS + 1) * MAX_BLOB_BYTES  # never less than `node report` takes
    async with ui(scene.field.folder, limit=256 * 1024) as client:
        csrf, _ = await token(client, f"/tasks/{scene.task}")
        resp = await client.post(
            f"/tasks/{scene.task}/report", data=form(csrf, photos=[("huge.png", png(400, 400, noise=2))], **GOOD)
        )
        html = await resp.text()
        assert resp.status == 413 and "照片太大，报告未保存" in html and "0.2 MiB" in html
        assert 'id="report-form"' in html  # the form is there to try again
        # Sent in chunks with no length given: refused while reading, with the same page.
        multipart = form(csrf, photos=[("huge.png", png(400, 400, noise=3))], **GOOD)()
        body = await multipart.as_bytes()

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 64 * 1024):
                yield body[i : i + 64 * 1024]

        resp = await client.post(
            f"/tasks/{scene.task}/report", data=chunks(), headers={"Content-Type": multipart.content_type}
        )
        html = await resp.text()
        assert resp.status == 413 and "照片太大，报告未保存" in html and "本次提交共" not in html
    assert not scene.field.records.values("report", scene.task)


async def test_a_scanned_signature_works_without_the_pad(client: TestClient[Any, Any], scene: Scene) -> None:
    csrf, _ = await token(client, f"/tasks/{scene.task}")
    scan = png(120, 40, (250, 250, 250))
    resp = await client.post(
        f"/tasks/{scene.task}/report",
        allow_redirects=False,
        data=form(csrf, signature_file=scan, **{**GOOD, "result": "pass"}),
    )
    assert resp.status == 303
    rep = scene.field.records.values("report", scene.task)
    assert rep["signature"] == sha256(scan) and rep["photos"] == []
    assert all(rep["checklist"].values())  # type: ignore[attr-defined]  # a pass: every line satisfied


async def test_blob_route_serves_only_what_a_report_here_names(client: TestClient[Any, Any], scene: Scene) -> None:
    stray = png(10, 10, (7, 7, 7))
    store = blobs.store_of(scene.field)
    assert store.put(stray) == sha256(stray)  # in the store, but no report names it
    resp = await client.get(f"/blobs/{sha256(stray)}")
    assert resp.status == 404 and resp.headers["X-Content-Type-Options"] == "nosniff"
    assert (await client.get(f"/blobs/{sha256(b'never seen')}")).status == 404
    assert (await client.get("/blobs/..%2F..%2Fstation.db")).status == 404
    csrf, _ = await token(client, f"/tasks/{scene.task}")
    other = b"not an image at all" * 10
    resp = await client.post(
        f"/tasks/{scene.task}/report", allow_redirects=False, data=form(csrf, photos=[("odd.bin", other)], **GOOD)
    )
    assert resp.status == 303
    got = await client.get(f"/blobs/{sha256(other)}")
    assert got.status == 200 and got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Disposition"] == "attachment"


@pytest.mark.parametrize(
    ("gps", "flag"), [(("48.8566", "2.3522", "10"), "位置不在中国境内"), (("27.1167", "114.9833", "900"), "定位精度差")]
)
async def test_an_implausible_position_is_kept_and_flagged(
    client: TestClient[Any, Any], scene: Scene, gps: tuple[str, str, str], flag: str
) -> None:
    csrf, _ = await token(client, f"/tasks/{scene.task}")
    lat, lon, acc = gps
    resp = await client.post(
        f"/tasks/{scene.task}/report", data=form(csrf, **{**GOOD, "lat": lat, "lon": lon, "acc": acc})
    )
    html = await resp.text()
    assert resp.status == 200 and 'id="saved"' in html
    rep = scene.field.records.values("report", scene.task)
    assert rep["gps"] == [float(lat), float(lon), float(acc)] and flag in str(rep["gps_flag"])
    assert 'id="gps-flag"' in html and flag in html


async def test_the_full_phone_is_shown_only_with_a_reason_and_audited(
    client: TestClient[Any, Any], scene: Scene
) -> None:
    csrf, html = await token(client, f"/tasks/{scene.task}")
    assert PHONE not in html and "139****0731" in html
    resp = await client.post(f"/tasks/{scene.task}/reveal", data={"csrf": csrf, "staff": "踏勘员甲", "reason": ""})
    assert resp.status == 400 and PHONE not in await resp.text()
    resp = await client.post(
        f"/tasks/{scene.task}/reveal", data={"csrf": csrf, "staff": "踏勘员甲", "reason": "联系申请人约定踏勘时间"}
    )
    assert resp.status == 200 and PHONE in await resp.text()
    rows = scene.field.conn.execute("SELECT staff, action, target FROM ui_audit").fetchall()
    assert rows == [("踏勘员甲", "reveal_task", scene.number)]
    assert (await client.get("/tasks/01900000-0000-7000-8000-000000000000")).status == 404


async def test_a_purged_task_is_marked_and_its_photos_are_gone(client: TestClient[Any, Any], scene: Scene) -> None:
    csrf, _ = await token(client, f"/tasks/{scene.task}")
    shot = png(40, 40, (90, 90, 90))
    resp = await client.post(
        f"/tasks/{scene.task}/report", allow_redirects=False, data=form(csrf, photos=[("p.png", shot)], **GOOD)
    )
    assert resp.status == 303
    scene.world.clock.ms = now_ms()  # the report was written on the UI's real clock; the hub must not see it as skew
    scene.world.push(scene.field)  # the hub signs for the report...
    blobs.mark_held(scene.field, [sha256(shot)])  # ...and holds its photo
    assert purge.purge(scene.field, 0)["purged"] == [scene.task]
    listed = await (await client.get("/tasks")).text()
    assert f'data-task="{scene.task}" data-status="done"' in listed and "data-purged" in listed
    assert "兴桥镇塅口村3组" not in listed and "139****0731" not in listed
    page = await (await client.get(f"/tasks/{scene.task}")).text()
    assert "本机副本已清除" in page and f'<img src="/blobs/{sha256(shot)}"' not in page
    assert 'id="record-state" data-state="receipted"' in page and "已送达区局" in page
    assert (await client.get(f"/blobs/{sha256(shot)}")).status == 404


async def test_a_pass_with_a_line_answered_no_asks_once_more_and_is_flagged(
    client: TestClient[Any, Any], scene: Scene
) -> None:
    # Without JavaScript (static/inspect.js asks in the browser) the server asks: the form comes back
    # with a box to tick and everything typed still there; nothing is written until it is ticked.
    csrf, _ = await token(client, f"/tasks/{scene.task}")
    before = outgoing(scene.field)
    fields = {**GOOD, "result": "pass", "check2": "no"}
    resp = await client.post(f"/tasks/{scene.task}/report", data=form(csrf, **fields))
    html = await resp.text()
    assert resp.status == 400 and "结论为通过，但有 1 项核查为否" in html
    assert 'id="confirm-no-box"' in html and GOOD["findings"] in html
    assert outgoing(scene.field) == before and scene.field.records.values("report", scene.task) == {}
    resp = await client.post(
        f"/tasks/{scene.task}/report", allow_redirects=False, data=form(csrf, confirm_no="1", **fields)
    )
    assert resp.status == 303
    rep = scene.field.records.values("report", scene.task)
    assert rep["result"] == "pass" and rep["check_flag"] == "结论为通过，但有 1 项核查为否"
    page = await (await client.get(f"/tasks/{scene.task}")).text()
    assert 'id="check-flag"' in page and "报告已标注" in page
