"""A township assigns an on-site inspection; the field device reports it through its station UI, offline.

Real `sanji` processes on loopback, as in test_inspection_e2e.py: the village accepts an item the
township decides; the township assigns the inspection to a field device (after the refusals of a
village and of a non-device); the device receives its task, the hub goes away, and the inspector fills
in the report form of `sanji node serve` (three photos, a drawn signature, GPS) with the device offline;
back online the report and every blob reach the hub; the township decides; the village sees it.
"""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.inspection.test_inspection_e2e import (
    _HTTP,
    FIELD,
    SANJI,
    TOWNSHIP,
    VILLAGE,
    Hub,
    _env,
    district,  # noqa: F401  (the fixture)
    free_port,
    id_number,
    sanji,
)
from tests.ui.images import jpeg_like, png, sha256
from tests.ui.inproc import csrf_of

pytestmark = pytest.mark.slow

ITEM = "360802-0006"  # 临时救助申请: decided by the township, on-site inspection required
MATERIALS = ("居民身份证", "临时救助申请书", "困难情况证明材料")  # every required one, per catalogue-sample.json
PHONE, ADDRESS = "13900000006", "兴桥镇塅口村5组"


def refusal(*args: object) -> str:
    """Run a `sanji` command that must be refused (exit 2) and return its one-line reason."""
    proc = subprocess.run(
        [str(SANJI), *(str(a) for a in args), "--json"], capture_output=True, text=True, timeout=90, env=_env()
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (proc.returncode, proc.stderr)
    return proc.stderr


def get(url: str) -> str:
    with _HTTP.open(url, timeout=10) as resp:
        assert resp.status == 200, url
        return str(resp.read().decode())


def serve_ui(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`sanji node serve` as staff start it: loopback only; up once /tasks answers."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(SANJI), "node", "serve", str(folder), "--port", str(port), "--interval", "3600"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the station UI exited at start: {log.read_text()[-2000:]}"
        try:
            get(f"http://127.0.0.1:{port}/tasks")
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the station UI did not start")


async def post_report(url: str, csrf: str, photos: list[tuple[str, bytes]], signature: bytes) -> tuple[int, str]:
    data = aiohttp.FormData()
    for name, value in (
        ("csrf", csrf),
        ("result", "rectify"),
        ("findings", "屋顶漏雨，需整改后复核"),
        ("check1", "yes"),
        ("lat", "27.116700"),
        ("lon", "114.983300"),
        ("acc", "12"),
        ("signature_png", "data:image/png;base64," + base64.b64encode(signature).decode()),
    ):
        data.add_field(name, value)
    for name, content in photos:
        data.add_field(
            "photos",
            content,
            filename=name,
            content_type="image/png" if content.startswith(b"\x89PNG") else "image/jpeg",
        )
    async with aiohttp.ClientSession() as session, session.post(url, data=data, allow_redirects=False) as resp:
        return resp.status, resp.headers.get("Location", "") or await resp.text()


def apps(folder: Path) -> dict[str, dict[str, object]]:
    return {a["number"]: a for a in sanji("node", "applications", folder)["applications"]}


def test_township_assigns_and_the_device_reports_through_its_ui(district: tuple[Path, Hub]) -> None:  # noqa: F811
    root, hub = district
    h, t, v, f = root / "hub", root / "township", root / "village", root / "field"
    sanji("hub", "init", h)
    tokens = {
        TOWNSHIP: sanji("hub", "enroll", h, "--station", TOWNSHIP, "--name", "兴桥镇", "--tier", "township"),
        VILLAGE: sanji(
            "hub", "enroll", h, "--station", VILLAGE, "--name", "塅口村", "--tier", "village", "--parent", TOWNSHIP
        ),
        FIELD: sanji("hub", "enroll", h, "--station", FIELD, "--name", "踏勘一号", "--tier", "field"),
    }
    hub.start()
    for folder, code, tier in ((t, TOWNSHIP, "township"), (v, VILLAGE, "village"), (f, FIELD, "field")):
        assert sanji("node", "init", folder, "--hub", hub.url, "--token", tokens[code]["token"])["tier"] == tier

    # The village accepts an item its township decides, and sends it up.
    number = sanji(
        "node",
        "accept",
        v,
        "--item",
        ITEM,
        "--name",
        "测试申请人丙",
        "--id-number",
        id_number(6),
        "--phone",
        PHONE,
        "--address",
        ADDRESS,
        *[a for m in MATERIALS for a in ("--material", m)],
    )["number"]
    sanji("node", "sync", v)

    # The township receives it with the district's field devices, reviews it and assigns the inspection.
    sanji("node", "sync", t)
    sanji("node", "transition", t, number, "--to", "under_review")
    due_before = str(apps(t)[number]["due_date"])
    assert "本站不决定事项" in refusal("node", "inspect", v, number, "--inspector", FIELD)
    assert "不是本区的踏勘设备" in refusal("node", "inspect", t, number, "--inspector", VILLAGE)
    assert (apps(t)[number]["status"], apps(t)[number]["paused"]) == ("under_review", False)  # nothing written
    assigned = sanji("node", "inspect", t, number, "--inspector", FIELD)
    task = assigned["task"]
    assert (assigned["number"], assigned["inspector"], assigned["status"]) == (number, FIELD, "inspecting")
    assert (apps(t)[number]["status"], apps(t)[number]["paused"]) == ("inspecting", True)
    sanji("node", "sync", t)
    assert [i["inspector"] for i in sanji("hub", "show", h, number)["inspections"]] == [FIELD]

    # The device receives its task, with the address and the phone masked; then the hub is gone.
    sanji("node", "sync", f)
    [got] = sanji("node", "tasks", f)["tasks"]
    assert (got["task"], got["number"], got["item"], got["address"], got["status"]) == (
        task,
        number,
        ITEM,
        ADDRESS,
        "assigned",
    )
    assert got["phone"] == "139****0006"
    hub.stop()

    # Offline, the inspector reports through the device's own UI.
    photos = [
        ("IMG_0001.png", png(700, 700, noise=1)),
        ("IMG_0002.png", png(64, 48, (30, 120, 200))),
        ("IMG_0003.jpg", jpeg_like(3000)),
    ]
    signature = png(300, 100, (255, 255, 255))
    port = free_port()
    ui_url = f"http://127.0.0.1:{port}"
    ui = serve_ui(f, port, root / "ui.log")
    try:
        listed = get(ui_url + "/tasks")
        assert re.findall(r'<tr data-task="([^"]+)" data-status="([^"]+)" data-number="([^"]+)"', listed) == [
            (task, "assigned", number)
        ]
        assert PHONE not in listed and "139****0006" in listed
        form = get(f"{ui_url}/tasks/{task}")
        assert 'id="report-form"' in form and 'value="rectify" id="result-rectify"' in form
        status, location = asyncio.run(post_report(f"{ui_url}/tasks/{task}/report", csrf_of(form), photos, signature))
        assert (status, location) == (303, f"/tasks/{task}?done=report"), location
        saved = get(ui_url + location)
        assert 'id="saved"' in saved and "需整改" in saved and '<span id="photo-count">3</span>' in saved
        assert [t_["status"] for t_ in sanji("node", "tasks", f)["tasks"]] == ["done"]
    finally:
        ui.terminate()
        ui.wait(timeout=10)

    # Back online: the report and every blob reach the hub, byte for byte.
    hub.start()
    synced = sanji("node", "sync", f)
    assert synced["pushed"] >= 1 and synced["pending"] == 0
    assert synced["blobs"]["complete"] == 4 and synced["blobs"]["pending"] == 0 and synced["blobs"]["errors"] == []
    for data in [*(b for _, b in photos), signature]:
        assert (h / "blobs" / sha256(data)[:2] / sha256(data)[2:]).read_bytes() == data
    [insp] = sanji("hub", "show", h, number)["inspections"]
    assert insp["task"] == task and insp["status"] == "done" and insp["report"]["result"] == "rectify"
    assert insp["photos"] == [sha256(b) for _, b in photos] and insp["missing_blobs"] == []
    assert insp["report"]["signature"] == sha256(signature)

    # The township sees the report (no CLI shows it at a station: read its records), and decides.
    sanji("node", "sync", t)
    from node.station import Station

    st = Station(t)
    try:
        report = st.records.values("report", task)
        assert report["result"] == "rectify" and report["photos"] == insp["photos"]
        assert st.records.values("task", task)["status"] == "done"
    finally:
        st.close()
    sanji("node", "transition", t, number, "--to", "denied", "--note", "需整改后重新申请")
    decided = apps(t)[number]
    assert (decided["status"], decided["paused"]) == ("denied", False)
    assert str(decided["due_date"]) >= due_before  # the paused working days (none here) are added back
    assert sanji("node", "sync", t)["pushed"] >= 1

    # The village sees the decision at its next sync.
    sanji("node", "sync", v)
    seen = apps(v)[number]
    assert (seen["status"], seen["paused"], seen["due_date"]) == ("denied", False, decided["due_date"])
    assert sanji("hub", "show", h, number)["status"] == "denied"
