"""Field inspection end to end, with real `sanji` processes on loopback.

The story: a village accepts an application that needs an on-site inspection; the hub assigns it to
a field device; the device, offline, records a report with three photos and a signature; back online
its records go first, the photo upload is cut off half-way (the hub is killed with chunks on disk),
and the next sync sends only the chunks the hub lacks; a tampered chunk is refused; every photo is at
the hub with the right hash; the hub approves; the village sees it; the device purges its copies.

Only the partial upload and the tampered chunk are driven from this process (with the device's own
keys, through node/transfer.py): everything else is the `sanji` command, as an operator would type it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocol.blob import CHUNK_SIZE, BlobRequest
from tests.applicants import id_check_char

pytestmark = pytest.mark.slow

SANJI = Path(sys.executable).parent / "sanji"
ITEM = "360802-0004"  # 最低生活保障申请: inspection required, decided by the district
FIELD, VILLAGE, TOWNSHIP = "360802-F01", "360802-T01-05", "360802-T01"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def sanji(*args: object, expect: int = 0) -> Any:
    proc = subprocess.run(
        [str(SANJI), *(str(a) for a in args), "--json"], capture_output=True, text=True, timeout=90, env=_env()
    )
    assert proc.returncode == expect, f"sanji {' '.join(map(str, args))}: exit {proc.returncode}\n{proc.stderr}"
    if expect == 2:
        assert proc.stderr.strip() and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port, self.url = folder, port, f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.folder.parent / "hub.log").open("ab")
        self.proc = subprocess.Popen(
            [str(SANJI), "hub", "serve", str(self.folder), "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the hub exited at start"
            with contextlib.suppress(OSError), _HTTP.open(self.url + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("the hub did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def district(tmp_path: Path) -> Iterator[tuple[Path, Hub]]:
    hub = Hub(tmp_path / "hub", free_port())
    try:
        yield tmp_path, hub
    finally:
        hub.stop()


def make_photo(path: Path, size: int) -> Path:
    path.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(size - 4))  # JPEG-like: only the hash matters here
    return path


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def id_number(serial: int) -> str:
    body = f"36080219700101{serial:03d}"
    return body + id_check_char(body)


def partial_upload(folder: Path, url: str, chunks: int) -> dict[str, object]:
    """The device's own upload code, cut off after ``chunks`` chunks (as a dropped line would)."""
    from node import transfer
    from node.station import Station

    async def go() -> dict[str, object]:
        async with aiohttp.ClientSession() as session:
            return (await transfer.upload_pending(st, session, url, max_chunks=chunks)).to_dict()

    st = Station(folder)
    try:
        return asyncio.run(go())
    finally:
        st.close()


def tampered_put(folder: Path, url: str, photo: Path, index: int) -> tuple[int, dict[str, Any]]:
    """PUT chunk ``index`` of ``photo`` with bytes other than those the signed header vouches for."""
    from node import transfer
    from node.station import Station

    data = photo.read_bytes()
    chunk = data[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
    st = Station(folder)
    try:
        req = BlobRequest("chunk", sha_of(photo), len(data), index, hashlib.sha256(chunk).hexdigest(), st.clock())
        header = transfer.request_header(st, req)
    finally:
        st.close()
    request = urllib.request.Request(
        f"{url}/v1/blobs/{sha_of(photo)}/{index}",
        data=bytes(len(chunk)),
        method="PUT",
        headers={transfer.REQUEST_HEADER: header},
    )
    try:
        with _HTTP.open(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_field_inspection_offline_with_photos_end_to_end(district: tuple[Path, Hub]) -> None:
    root, hub = district
    h, v, f = root / "hub", root / "village", root / "field"
    sanji("hub", "init", h)
    sanji("hub", "enroll", h, "--station", TOWNSHIP, "--name", "兴桥镇", "--tier", "township")
    tv = sanji("hub", "enroll", h, "--station", VILLAGE, "--name", "塅口村", "--tier", "village", "--parent", TOWNSHIP)[
        "token"
    ]
    tf = sanji("hub", "enroll", h, "--station", FIELD, "--name", "踏勘一号", "--tier", "field")["token"]
    hub.start()
    sanji("node", "init", v, "--hub", hub.url, "--token", tv)
    assert sanji("node", "init", f, "--hub", hub.url, "--token", tf)["tier"] == "field"

    # The village accepts; the hub reviews and assigns the inspection.
    app = sanji(
        "node",
        "accept",
        v,
        "--item",
        ITEM,
        "--name",
        "测试申请人甲",
        "--id-number",
        id_number(7),
        "--phone",
        "13900000007",
        "--address",
        "兴桥镇塅口村5组",
        "--material",
        "居民身份证",
        "--material",
        "户口簿",
        "--material",
        "家庭收入情况声明",
        "--material",
        "家庭经济状况核对授权书",
    )
    number = app["number"]
    sanji("node", "sync", v)
    sanji("hub", "transition", h, number, "--to", "under_review")
    sanji("hub", "inspect", h, number, "--inspector", VILLAGE, expect=2)  # not a field device
    assigned = sanji("hub", "inspect", h, number, "--inspector", FIELD)
    task = assigned["task"]
    assert (assigned["number"], assigned["inspector"]) == (number, FIELD)
    listed = sanji("hub", "applications", h)["applications"]
    assert [(a["status"], a["paused"]) for a in listed] == [("inspecting", True)]

    # The device receives its task, then goes offline.
    sanji("node", "sync", f)
    tasks = sanji("node", "tasks", f)["tasks"]
    assert [(t["task"], t["number"], t["item"], t["address"], t["status"]) for t in tasks] == [
        (task, number, ITEM, "兴桥镇塅口村5组", "assigned")
    ]
    hub.stop()
    photos = [
        make_photo(root / "a.jpg", 3 * CHUNK_SIZE + 100),
        make_photo(root / "b.jpg", 2 * CHUNK_SIZE + 1),
        make_photo(root / "c.jpg", 40_000),
    ]
    signature = make_photo(root / "signature.png", 3_000)
    sanji("node", "report", f, "no-such-task", "--result", "pass", "--finding", "x", expect=2)
    sanji("node", "report", f, task, "--result", "pass", "--finding", "x", "--photo", root / "nope.jpg", expect=2)
    reported = sanji(
        "node",
        "report",
        f,
        task,
        "--result",
        "pass",
        "--finding",
        "房屋破旧，家庭收入属实",
        "--gps",
        "27.1167,114.9833,12",
        *[a for p in photos for a in ("--photo", p)],
        "--signature",
        signature,
    )
    assert reported["status"] == "done" and reported["photos"] == [sha_of(p) for p in photos]
    sanji("node", "sync", f, expect=3)  # offline: nothing lost
    assert sanji("node", "status", f)["pending"] == 2

    # Back online: the records go first, then the upload is cut off after two chunks and the hub dies
    # with them on disk. A forged chunk is refused; the next sync sends only what the hub lacks.
    hub.start()
    from node import client
    from node.station import Station

    st = Station(f)
    try:
        asyncio.run(_push(client, st, hub.url))
    finally:
        st.close()
    assert sanji("node", "status", f)["pending"] == 0
    missing = sanji("hub", "show", h, number)["inspections"][0]["missing_blobs"]
    assert sorted(missing) == sorted([*reported["photos"], sha_of(signature)])
    cut = partial_upload(f, hub.url, 2)
    assert cut["sent_chunks"] == 2 and cut["complete"] == 0 and cut["pending"] == 4
    hub.stop(signal.SIGKILL)
    hub.start()
    status, body = tampered_put(f, hub.url, photos[0], 3)
    assert status == 422 and body["error"] == "tampered"
    resumed = sanji("node", "sync", f, "--retention-days", "0")
    blobs = resumed["blobs"]
    total = sum(-(-p.stat().st_size // CHUNK_SIZE) for p in [*photos, signature])
    assert blobs["skipped_chunks"] == 2 and blobs["sent_chunks"] == total - 2
    assert blobs["complete"] == 4 and blobs["pending"] == 0 and blobs["errors"] == []

    # Every photo is at the hub, under its hash, with the right bytes; the report shows at the hub.
    for p in [*photos, signature]:
        assert (h / "blobs" / sha_of(p)[:2] / sha_of(p)[2:]).read_bytes() == p.read_bytes()
    shown = sanji("hub", "show", h, number)
    assert {"number", "status", "events", "inspections"} <= set(shown)
    [insp] = shown["inspections"]
    assert insp["task"] == task and insp["status"] == "done" and insp["report"]["result"] == "pass"
    assert insp["photos"] == [sha_of(p) for p in photos] and insp["missing_blobs"] == []
    assert insp["report"]["signature"] == sha_of(signature)
    status_doc = sanji("hub", "status", h)
    assert status_doc["missing_blobs"] == 0 and status_doc["rejected_batches"] >= 1  # the forged chunk

    # The hub moves the application on; the village sees it at its next sync.
    sanji("hub", "transition", h, number, "--to", "approved", "--note", "符合条件")
    sanji("node", "sync", v)
    village_view = {a["number"]: a for a in sanji("node", "applications", v)["applications"]}
    assert village_view[number]["status"] == "approved" and village_view[number]["paused"] is False

    # The device's copies went after the retention period (0 days here); the hub keeps its own.
    assert resumed["purged"]["purged"] == [task]
    assert not [p for p in (f / "blobs").rglob("*") if p.is_file()]
    assert [t["address"] for t in sanji("node", "tasks", f)["tasks"]] == ["（已清除）"]
    assert sanji("node", "sync", f)["pushed"] == 0  # the purge wrote no change
    assert sanji("hub", "show", h, number)["inspections"][0]["photos"] == [sha_of(p) for p in photos]


async def _push(client: Any, st: Any, url: str) -> None:
    async with aiohttp.ClientSession() as session:
        await client.push(st, session, url)
