"""A district on loopback: a hub and two village stations under one township, all real processes.

The tests over HTTP share one hub per module (`district_hub`, restarted when a test stopped it), each
with fresh stations of its own; the hand-carried tests make their own hub and never start it. All of
them drive Sanji only with `sanji ... --json` and the hub's HTTP routes (CONTRACT.md) and check what
an operator or station staff would see.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.applicants import People

from .conftest import TOWNSHIP, District, Hub, Node
from .processes import healthz, http, ok, parallel, run_sanji

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("hub_backend")]  # on SQLite and on PostgreSQL

PROMISED_TOWNSHIP = "360802-0009"  # 承诺件, decided at the township, a village may accept it
PROMISED_DISTRICT = "360802-0004"  # 承诺件, decided at the district; 家庭收入情况声明 may be deferred (容缺)
IMMEDIATE = "360802-0001"  # 即办件: 居民身份证 and 户口簿
IMMEDIATE_2 = "360802-0003"  # 即办件: 居民身份证

FRAMES = "application/vnd.sanji.frames+msgpack"


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one clear line on stderr, got: {stderr!r}"
    return lines[0]


def counts(status: dict[str, Any]) -> tuple[int, int, int, int]:
    return status["applications"], status["conflicts"], status["quarantined"], status["rejected_batches"]


def sync_ok(node: Node) -> dict[str, Any]:
    res = node.sync()
    assert res.code == 0, f"node sync of {node.code} exited {res.code}: {res.stderr.strip()}"
    assert res.data is not None
    return dict(res.data)


# -- offline, outage, convergence, idempotence ----------------------------------------------------------


def test_offline_acceptance_then_convergence_exactly_once(district: District, people: People) -> None:
    hub, a, b = district.hub, district.a, district.b
    hub.stop_all()
    assert healthz(hub.url) is None, "the hub should be down for this part"
    before = hub.applications()

    # A day of work at both windows while the hub is unreachable.
    accepted_a, accepted_b = parallel(
        lambda: [
            a.accept(people, IMMEDIATE),
            a.accept(people, PROMISED_TOWNSHIP),
            a.accept(people, PROMISED_DISTRICT, defer=("家庭收入情况声明",)),
        ],
        lambda: [b.accept(people, IMMEDIATE_2), b.accept(people, PROMISED_DISTRICT)],
    )
    numbers_a = {d["number"] for d in accepted_a}
    numbers_b = {d["number"] for d in accepted_b}
    assert len(numbers_a) == 3 and len(numbers_b) == 2 and not numbers_a & numbers_b

    for res in parallel(a.sync, b.sync):
        assert res.code == 3, f"sync with the hub down should exit 3, got {res.code}: {res.stderr!r}"
        line = one_line(res.stderr)
        assert "连不上区局" in line and "联网后自动上传" in line, line
        assert "Error" not in line, "no exception class names for staff"
    for st, n in zip(parallel(a.status, b.status), (3, 2), strict=True):
        assert st["pending"] >= n > 0, st
        assert st["hub_reachable"] is False, st
    assert hub.applications() == before, "nothing can have reached a hub that was down"

    hub.start()
    for out in parallel(lambda: sync_ok(a), lambda: sync_ok(b)):
        assert out["pushed"] > 0 and out["pending"] == 0, out
        assert out.get("refused", []) == [], out
    st = a.status()
    assert st["pending"] == 0 and st["hub_reachable"] is True and st["last_sync"], st

    # Convergence: the hub holds the union of both stations' applications, each exactly once.
    hub_apps = hub.applications()
    all_numbers = [x["number"] for x in hub_apps]
    assert len(all_numbers) == len(set(all_numbers)), f"duplicates at the hub: {sorted(all_numbers)}"
    ours = [x for x in hub_apps if x["station"] in (a.code, b.code)]
    view_a, view_b = parallel(a.by_number, b.by_number)
    assert {x["number"] for x in ours} == set(view_a) | set(view_b) == numbers_a | numbers_b
    assert {x["number"] for x in ours if x["station"] == a.code} == numbers_a
    assert {x["number"] for x in ours if x["station"] == b.code} == numbers_b
    node_view = {**view_a, **view_b}
    for app in ours:
        mine = node_view[app["number"]]
        for key in ("id", "station", "item", "status", "applicant_name", "accepted_at", "due_date"):
            assert app[key] == mine[key], f"{app['number']}: {key} differs: hub {app[key]!r}, node {mine[key]!r}"
    status = hub.status()
    per_station = {s["code"]: s for s in status["stations"]}
    assert per_station[a.code]["applications"] == 3 and per_station[b.code]["applications"] == 2

    # Idempotent re-sync: nothing more to push, nothing changes at the hub.
    some = sorted(numbers_a)[0]
    before_events = len(ok("hub", "show", hub.dir, some)["events"])
    for out in parallel(lambda: sync_ok(a), lambda: sync_ok(b)):
        assert out["pushed"] == 0 and out["pending"] == 0, out
    assert hub.applications() == hub_apps
    assert counts(hub.status()) == counts(status)
    assert len(ok("hub", "show", hub.dir, some)["events"]) == before_events


# -- downstream status updates ------------------------------------------------------------------------


def statuses(node: Node) -> dict[str, str]:
    return {n: x["status"] for n, x in node.by_number().items()}


def test_hub_status_changes_reach_the_station(district: District, people: People) -> None:
    hub, a, b = district.hub, district.a, district.b
    (promised, immediate), other = parallel(
        lambda: [a.accept(people, PROMISED_TOWNSHIP)["number"], a.accept(people, IMMEDIATE)["number"]],
        lambda: b.accept(people, IMMEDIATE_2)["number"],
    )
    parallel(lambda: sync_ok(a), lambda: sync_ok(b))

    for number, to in ((promised, "under_review"), (immediate, "completed")):
        assert ok("hub", "transition", hub.dir, number, "--to", to) == {"number": number, "status": to}
    out = sync_ok(a)
    assert out["pulled"] >= 2, out
    assert statuses(a) == {promised: "under_review", immediate: "completed"}

    for to in ("approved", "completed"):
        assert ok("hub", "transition", hub.dir, promised, "--to", to) == {"number": promised, "status": to}
    out = sync_ok(a)
    assert out["pulled"] >= 1, out
    assert statuses(a) == {promised: "completed", immediate: "completed"}

    # The other village sees none of this, and none of village A's citizens.
    sync_ok(b)
    assert statuses(b) == {other: "accepted"}
    # A refused hub step is exit 2 with a reason, and changes nothing.
    res = run_sanji("hub", "transition", hub.dir, other, "--to", "approved")
    assert res.code == 2 and one_line(res.stderr)
    hub_side = {x["number"]: x["status"] for x in hub.applications() if x["station"] in (a.code, b.code)}
    assert hub_side == {promised: "completed", immediate: "completed", other: "accepted"}


# -- revocation ---------------------------------------------------------------------------------------


def test_revoked_station_is_refused_and_the_other_is_not(district: District, people: People) -> None:
    hub, a, b = district.hub, district.a, district.b
    first_a, first_b = parallel(lambda: a.accept(people)["number"], lambda: b.accept(people, IMMEDIATE_2)["number"])
    parallel(lambda: sync_ok(a), lambda: sync_ok(b))

    revoked = ok("hub", "revoke", hub.dir, "--station", a.code)
    assert revoked["station"] == a.code and revoked["revoked"] is True
    before = hub.applications()
    assert {first_a, first_b} <= {x["number"] for x in before}

    late = a.accept(people, PROMISED_TOWNSHIP)["number"]  # the window still works offline
    res = a.sync()
    assert res.code == 2, f"a revoked station's sync should exit 2, got {res.code}: {res.stderr!r}"
    line = one_line(res.stderr)
    assert "revoked" in line or "吊销" in line, line
    assert hub.applications() == before, "nothing from a revoked station may be applied"
    assert a.status()["pending"] > 0, "the refused work stays queued at the station"

    # The other village carries on as before.
    second_b = b.accept(people, IMMEDIATE)["number"]
    out = sync_ok(b)
    assert out["pushed"] > 0 and out["pending"] == 0
    after = hub.applications()
    assert {x["number"] for x in after if x["station"] == b.code} == {first_b, second_b}
    assert {x["number"] for x in after if x["station"] == a.code} == {first_a}
    assert late not in {x["number"] for x in after}
    per_station = {s["code"]: s for s in hub.status()["stations"]}
    assert per_station[a.code]["revoked"] is True and per_station[b.code]["revoked"] is False
    assert healthz(hub.url) is not None


# Regression: a refused pull (revoked station) once raised before last_error was recorded.
def test_revoked_station_status_says_why(district_hub: Hub, new_village: Callable[[], Node], people: People) -> None:
    hub, node = district_hub, new_village()
    node.accept(people)
    sync_ok(node)
    ok("hub", "revoke", hub.dir, "--station", node.code)
    node.accept(people, IMMEDIATE_2)
    res = node.sync()
    assert res.code == 2 and "revoked" in one_line(res.stderr)
    st = node.status()
    assert st["pending"] > 0
    # What staff see at the window (and what `node serve`'s background loop leaves behind): the reason.
    assert "revoked" in str(st.get("last_error", "")), st


# -- tampered file carried by hand --------------------------------------------------------------------


def _frame_offsets(frame: bytes) -> dict[str, int]:
    """Offsets of one byte inside each part of a frame: SJF1 + msgpack [header, body, signature]."""
    assert frame[:4] == b"SJF1"
    header, body, signature = msgpack.unpackb(frame[4:], raw=True)
    return {
        "header": frame.index(header) + len(header) // 2,
        "body": frame.index(body, 4 + len(header)) + len(body) // 2,
        "signature": frame.rindex(signature) + len(signature) - 1,
    }


def test_tampered_batch_file_is_refused_and_nothing_applied(hub: Hub, tmp_path: Path, people: People) -> None:
    hub.enroll(TOWNSHIP, tier="township")
    code = f"{TOWNSHIP}-71"
    enrolment = tmp_path / "enrolment.sje"
    token = hub.enroll(code, tier="village", parent=TOWNSHIP, out=enrolment)  # the slip: file and token
    node = Node(tmp_path / "node", code)
    assert ok("node", "init", node.dir, "--enrollment", enrolment, "--token", token)["station"] == code
    accepted = {node.accept(people, item)["number"] for item in (IMMEDIATE, PROMISED_TOWNSHIP, IMMEDIATE_2)}

    usb = tmp_path / "usb"
    exported = ok("node", "export", node.dir, "--out", usb)
    assert exported["changes"] == 3
    batches = sorted(usb.glob("*.sjb"))
    assert batches, exported

    target = batches[0].name
    frame = (usb / target).read_bytes()
    for part, offset in _frame_offsets(frame).items():
        bad = tmp_path / f"usb-bad-{part}"
        shutil.copytree(usb, bad)
        data = bytearray(frame)
        data[offset] ^= 0x01
        (bad / target).write_bytes(bytes(data))
        res = run_sanji("hub", "import", hub.dir, bad)
        assert res.code == 2, f"byte flipped in the {part}: import should exit 2, got {res.code} {res.data}"
        assert res.data is not None and res.data["accepted"] == 0, res.data
        rejected = {Path(r["file"]).name: r["reason"] for r in res.data["rejected"]}
        assert rejected.get(target), res.data
    assert hub.applications() == [], "a tampered batch must change nothing"

    # The untampered copy goes in whole.
    res = run_sanji("hub", "import", hub.dir, usb)
    assert res.code == 0, res
    assert res.data["accepted"] == len(batches) and res.data["rejected"] == [], res.data
    numbers = hub.numbers()
    assert len(numbers) == 3 and set(numbers) == accepted


# -- garbage and forgeries over HTTP ------------------------------------------------------------------


def _forged_frame(origin: str, hub_id: str) -> bytes:
    """A well-formed batch claiming to come from `origin`, signed with a key the hub never pinned."""
    from protocol.batch import build_batch

    change = [
        origin,
        1,
        1,
        1 << 16,
        "application",
        "01900000-0000-7000-8000-000000000000",
        {"number": "forged", "station": origin, "item": IMMEDIATE, "status": "accepted"},
        {},
    ]
    return build_batch(
        origin=origin,
        epoch=1,
        first_seq=1,
        changes=[change],
        prev=bytes(32),
        recipient=hub_id,
        hlc=1 << 16,
        signing_key=Ed25519PrivateKey.generate(),
    )


def test_garbage_push_gets_4xx_and_the_hub_keeps_serving(
    district_hub: Hub, new_village: Callable[[], Node], people: People, tmp_path: Path
) -> None:
    hub, a = district_hub, new_village()
    server = hub.ensure_running()
    number = a.accept(people)["number"]
    usb = tmp_path / "usb"
    ok("node", "export", a.dir, "--out", usb)
    real = sorted(usb.glob("*.sjb"))[0].read_bytes()
    flipped = bytearray(real)
    flipped[len(real) // 2] ^= 0xFF

    bodies: dict[str, tuple[bytes, str]] = {
        "garbage": (b"this is not msgpack \x00\xff" * 10, FRAMES),
        "random bytes": (os.urandom(4096), FRAMES),
        "json": (json.dumps({"batches": ["x"]}).encode(), "application/json"),
        "empty array": (msgpack.packb([]), FRAMES),
        "a map": (msgpack.packb({"frames": [b"x"]}), FRAMES),
        "not a frame": (msgpack.packb([b"SJF1 nothing here"]), FRAMES),
        "truncated frame": (msgpack.packb([real[: len(real) // 2]]), FRAMES),
        "flipped frame": (msgpack.packb([bytes(flipped)]), FRAMES),
        "forged frame": (msgpack.packb([_forged_frame(a.code, "360802")]), FRAMES),
        "too many frames": (msgpack.packb([real] * 300), FRAMES),
        "nested too deep": (msgpack.packb([[[[[real]]]]]), FRAMES),
        "empty": (b"", FRAMES),
    }
    pulls = {
        "pull without a signature": {},
        "pull with a header that is not base64": {"X-Sanji-Request": "!!not base64!!"},
        "pull with garbage": {"X-Sanji-Request": base64.b64encode(os.urandom(200)).decode()},
        "pull with a batch frame instead of a request": {"X-Sanji-Request": base64.b64encode(real).decode()},
    }
    requests = [(what, "POST", "/v1/sync/push", body, {"Content-Type": ct}) for what, (body, ct) in bodies.items()]
    requests += [(what, "GET", "/v1/sync/pull?after=0", None, headers) for what, headers in pulls.items()]
    before = hub.applications()
    for what, method, route, body, headers in requests:
        status, answer = http(method, hub.url + route, body, headers)
        assert 400 <= status < 500, f"{what}: expected a 4xx, got {status} {answer[:200]!r}"
        assert server.running, f"{what}: the hub died:\n{server.log_text()}"
        doc = healthz(hub.url)
        assert doc is not None and doc["ok"] is True, f"{what}: healthz failed"
    assert hub.applications() == before, "a refused request must change nothing"

    # The station is still served: its real batch goes in, once.
    out = sync_ok(a)
    assert out["pushed"] == 1 and out["pending"] == 0, out
    assert [x["number"] for x in hub.applications() if x["station"] == a.code] == [number]
    assert server.running and healthz(hub.url) is not None


# -- a station that starts offline, by enrolment file and USB stick -------------------------------------


def test_enrolment_file_and_hand_carried_round_trip(hub: Hub, tmp_path: Path, people: People) -> None:
    hub.enroll(TOWNSHIP, tier="township")
    code = f"{TOWNSHIP}-91"
    enrolment = tmp_path / "carry" / "enrolment.sje"
    enrolment.parent.mkdir()
    token = hub.enroll(code, tier="village", parent=TOWNSHIP, out=enrolment)  # the slip: file and token
    assert enrolment.is_file() and enrolment.stat().st_size > 0

    # The hub is never started: everything travels on the stick.
    node = Node(tmp_path / "node", code)
    doc = ok("node", "init", node.dir, "--enrollment", enrolment, "--token", token)
    assert (doc["station"], doc["tier"], doc["catalogue_version"]) == (code, "village", 1)
    promised = node.accept(people, PROMISED_TOWNSHIP)["number"]
    immediate = node.accept(people, IMMEDIATE)["number"]
    deferred = node.accept(people, PROMISED_DISTRICT, defer=("家庭收入情况声明",))["number"]

    up = tmp_path / "usb-up"
    exported = ok("node", "export", node.dir, "--out", up)
    names = [Path(f).name for f in exported["files"]]
    assert any(n.endswith(".sjc") for n in names), f"an offline station's first export carries its claim: {names}"
    sjb = [n for n in names if n.endswith(".sjb")]
    assert sjb and exported["changes"] == 3

    res = run_sanji("hub", "import", hub.dir, up)
    assert res.code == 0, f"hub import exited {res.code}: {res.stderr} {res.data}"
    assert (res.data["accepted"], res.data["duplicates"], res.data["rejected"]) == (len(sjb), 0, [])
    assert set(hub.numbers(code)) == {promised, immediate, deferred}

    # Carrying the same stick twice changes nothing.
    res = run_sanji("hub", "import", hub.dir, up)
    assert res.code == 0 and res.data["accepted"] == 0 and res.data["duplicates"] == len(sjb), res.data

    for number, to in (
        (promised, "under_review"),
        (promised, "approved"),
        (promised, "completed"),
        (immediate, "completed"),
        (deferred, "under_review"),
    ):
        ok("hub", "transition", hub.dir, number, "--to", to)

    down = tmp_path / "usb-down"
    files = ok("hub", "export", hub.dir, "--station", code, "--out", down)["files"]
    assert files and all(Path(f).is_file() for f in files)
    forged = tmp_path / "usb-down-tampered"
    shutil.copytree(down, forged)
    page = sorted(forged.glob("*.sjd"))[0]
    data = bytearray(page.read_bytes())
    data[len(data) // 2] ^= 0x01
    page.write_bytes(bytes(data))
    res = run_sanji("node", "import", node.dir, forged)
    assert res.code == 2, f"a tampered hub file should be refused: {res.code} {res.data}"
    assert page.name in {Path(r["file"]).name for r in res.data["rejected"]}, res.data
    assert statuses(node)[promised] == "accepted", "nothing from a refused page may be applied"

    res = run_sanji("node", "import", node.dir, down)
    assert res.code == 0, f"node import exited {res.code}: {res.stderr} {res.data}"
    assert res.data["accepted"] == len(files) and res.data["rejected"] == [], res.data

    assert node.status()["pending"] == 0, "the hub's receipts should settle every batch"
    assert statuses(node) == {promised: "completed", immediate: "completed", deferred: "under_review"}


# Regression: apply_feed once moved the cursor past a page that had been refused.
def test_refused_feed_page_is_not_skipped_by_a_later_one(district_hub: Hub, tmp_path: Path, people: People) -> None:
    hub = district_hub
    hub.ensure_running()
    code = f"{TOWNSHIP}-95"
    enrolment = tmp_path / "enrolment.sje"
    token = hub.enroll(code, tier="village", parent=TOWNSHIP, out=enrolment)  # carries the hub's address
    node = Node(tmp_path / "node", code)
    ok("node", "init", node.dir, "--enrollment", enrolment, "--token", token)
    number = node.accept(people, IMMEDIATE)["number"]
    up = tmp_path / "up"
    ok("node", "export", node.dir, "--out", up)
    assert run_sanji("hub", "import", hub.dir, up).code == 0
    ok("hub", "transition", hub.dir, number, "--to", "completed")

    # The stick back: the page carrying the decision is damaged in transit; the rest are fine.
    down = tmp_path / "down"
    ok("hub", "export", hub.dir, "--station", code, "--out", down)
    pages = sorted(down.glob("*_feed_*.sjd"))
    assert len(pages) >= 2, pages
    data = bytearray(pages[0].read_bytes())
    data[len(data) // 2] ^= 0x01
    pages[0].write_bytes(bytes(data))
    res = run_sanji("node", "import", node.dir, down)
    assert res.code == 2 and pages[0].name in {Path(r["file"]).name for r in res.data["rejected"]}, res
    assert statuses(node) == {number: "accepted"}

    # Later the station gets a connection: an ordinary sync must bring what the damaged page carried.
    sync_ok(node)
    assert statuses(node) == {number: "completed"}, "the refused page's changes were skipped by the feed cursor"
