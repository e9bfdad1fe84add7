"""The citizen's tracking code end to end, with real processes: a village accepts offline, the notice
it prints carries the code and a QR code of the hub's tracking page, the page says nothing until the
village syncs, then the status, then the hub's decision. And a sweep: no tracking answer, page or
JSON, carries an applicant's name, ID number or phone.

Everything goes through CONTRACT.md's surface (`sanji ... --json`, the hub's and the station's HTTP);
applicants are generated (tests/applicants.py).
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.applicants import People, required_materials
from tests.e2e.conftest import Hub, Node, init_online
from tests.e2e.processes import free_loopback_port, http, ok, start_sanji, stop_process
from tests.track.qr_reader import decode

ITEM = "360802-0004"  # 最低生活保障申请: decided at the district, one deferrable material
NEUTRAL = "暂无此件信息：如刚在村站受理，请待上传后再查询"
CODE = re.compile(r"^[2-9A-HJKMNP-TV-Z]{5}-[2-9A-HJKMNP-TV-Z]{5}-[2-9A-HJKMNP-TV-Z]{5}$")

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)


def accept(node: Node, people: People, item: str = ITEM, defer: tuple[str, ...] = ()) -> dict[str, Any]:
    """`sanji node accept --json` for one generated applicant; the applicant's details come back too."""
    person = {"name": people.name(), "id_number": people.id_number(), "phone": people.phone()}
    args: list[object] = ["node", "accept", node.dir, "--item", item, "--address", people.address()]
    for flag, key in (("--name", "name"), ("--id-number", "id_number"), ("--phone", "phone")):
        args += [flag, person[key]]
    for m in required_materials(item):
        args += ["--defer" if m in defer else "--material", m]
    return {**ok(*args), **person}


@contextlib.contextmanager
def station_ui(node: Node, tmp: Path) -> Iterator[str]:
    """`sanji node serve`: the station's own window pages on loopback."""
    port = free_loopback_port()
    proc = start_sanji("node", "serve", node.dir, "--port", port, "--interval", 3600, log=tmp / "node-serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if http("GET", url + "/status.json", timeout=1)[0] == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        stop_process(proc)


def track(hub: Hub, code: str) -> tuple[int, Any]:
    status, body = http("GET", f"{hub.url}/v1/track/{code}")
    return status, json.loads(body)


def test_accepted_offline_the_notice_carries_the_code_and_the_page_follows_sync_and_decision(
    hub: Hub, tmp_path: Path
) -> None:
    people = People(seed=18)
    with hub.serving():
        hub.enroll("360802-T01", tier="township")
        village = init_online(hub, tmp_path / "village", "360802-T01-01")
    # The hub is down: the village accepts offline, as it would on a day without a network.
    made = accept(village, people, defer=("家庭收入情况声明",))
    code = made["tracking_code"]
    assert CODE.match(code), code

    with station_ui(village, tmp_path) as ui:
        status, body = http("GET", f"{ui}/receipt?n={made['number']}")
    assert status == 200
    notice = body.decode()
    assert f'data-tracking-code="{code}"' in notice
    svg = re.search(r"<svg[^>]*class=\"track-qr\".*?</svg>", notice, re.S)
    assert svg is not None, "the notice has no QR code"
    assert decode(html.unescape(svg.group(0))) == [f"{hub.url}/track/{code}"]

    with hub.serving():
        assert track(hub, code) == (404, {"error": "not_found", "message": NEUTRAL})
        page_status, page = http("GET", f"{hub.url}/track/{code}")
        assert page_status == 404 and NEUTRAL in page.decode()

        assert village.sync().code == 0
        status, got = track(hub, code)
        assert status == 200, got
        assert got["item"] == "最低生活保障申请" and got["status"] == "受理"
        assert [h["status"] for h in got["history"]] == ["受理"]
        assert got["outstanding"] == [{"material": "家庭收入情况声明", "due": got["outstanding"][0]["due"]}]
        assert got["received_at"], "the hub has signed for it"

        ok("hub", "transition", hub.dir, made["number"], "--to", "under_review", "--note", "转入审查")
        status, got = track(hub, code)
        assert status == 200 and got["status"] == "审查"
        assert [h["status"] for h in got["history"]] == ["受理", "审查"]
        page_status, page = http("GET", f"{hub.url}/track/{code}")
        assert page_status == 200 and "审查" in page.decode()


def test_no_tracking_answer_carries_an_applicants_name_id_number_or_phone(hub: Hub, tmp_path: Path) -> None:
    people = People(seed=1818)
    (hub.dir / "track.json").write_text(json.dumps({"burst": 500, "per_minute": 600}))
    with hub.serving():
        hub.enroll("360802-T01", tier="township")
        village = init_online(hub, tmp_path / "village", "360802-T01-01")
        items = ["360802-0004", "360802-0001", "360802-0010"]
        made = [accept(village, people, items[i % 3]) for i in range(12)]
        assert village.sync().code == 0
        ok("hub", "transition", hub.dir, made[0]["number"], "--to", "under_review")
        answers = []
        for m in made:
            for route in ("/track/", "/v1/track/"):
                status, body = http("GET", hub.url + route + m["tracking_code"])
                assert status == 200, (route, status)
                answers.append(body.decode())
    assert len(answers) == 24
    for m in made:
        for value in (m["name"], m["id_number"], m["phone"], m["id_number"][-6:], m["phone"][-8:]):
            assert not any(value in a for a in answers), value
