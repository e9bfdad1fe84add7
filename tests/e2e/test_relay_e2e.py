"""The township as an untrusted relay, with real processes: a hub, a township serving a relay port, and two
villages whose configured hub address is dead. They accept offline, their batches go up through the
township, the hub decides, and the decisions come down the same way; the hub holds every application
once, and each village sees its own and only its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.applicants import People
from tests.conftest import sqlite_only

from .conftest import TOWNSHIP, Hub, Node
from .processes import free_loopback_port, healthz, http, ok, parallel, run_sanji, start_sanji, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("hub_backend")]  # on SQLite and on PostgreSQL

PROMISED_DISTRICT = "360802-0004"  # decided at the district
IMMEDIATE = "360802-0001"
WAIT_S = 60.0


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it returns something true (the township forwards on its own loop)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting: {what}")


def relay_sync(node: Node) -> dict[str, Any]:
    res = node.sync()
    assert res.code == 0, f"node sync of {node.code} through the relay exited {res.code}: {res.stderr.strip()}"
    assert res.data["via"] == "relay", res.data
    assert res.data["feed_problems"] == [], res.data
    return dict(res.data)


@pytest.fixture
def township_relay(hub: Hub, tmp_path: Path) -> Iterator[tuple[Node, str, Node, Node]]:
    hub.start()
    token = hub.enroll(TOWNSHIP, tier="township", name="测试镇便民服务中心")
    township = Node(tmp_path / "township", TOWNSHIP)
    ok("node", "init", township.dir, "--hub", hub.url, "--token", token)
    relay_port = free_loopback_port()
    relay_url = f"http://127.0.0.1:{relay_port}"
    villages = []
    for n in (1, 2):
        code = f"{TOWNSHIP}-{n:02d}"
        token = hub.enroll(code, tier="village", parent=TOWNSHIP)
        doc = ok("node", "init", tmp_path / code, "--hub", hub.url, "--token", token, "--relay", relay_url)
        assert doc["relay"] == relay_url
        villages.append(Node(tmp_path / code, code))
    # The hall moves: the villages' hub address is dead from now on; the township follows the move.
    hub.stop_all()
    hub.port = free_loopback_port()
    hub.start()
    assert ok("node", "set-hub", township.dir, hub.url)["hub"] == hub.url
    proc = start_sanji(
        "node",
        "serve",
        township.dir,
        "--port",
        free_loopback_port(),
        "--relay-port",
        relay_port,
        "--interval",
        "0.5",
        log=tmp_path / "township-serve.log",
    )
    try:
        wait_for("the relay listener", lambda: healthz(relay_url))
        yield township, relay_url, villages[0], villages[1]
    finally:
        stop_process(proc)


def test_villages_sync_through_the_township_relay_both_ways(
    hub: Hub, township_relay: tuple[Node, str, Node, Node], people: People
) -> None:
    township, relay_url, a, b = township_relay
    assert healthz(relay_url) == {"ok": True, "relay": TOWNSHIP}
    # The relay answers its routes only: the staff UI is not on this listener.
    assert http("GET", relay_url + "/")[0] == 404

    promised_a, immediate_a = a.accept(people, PROMISED_DISTRICT)["number"], a.accept(people, IMMEDIATE)["number"]
    promised_b = b.accept(people, PROMISED_DISTRICT)["number"]

    # Up: the batches are left at the relay; the township carries them on its next round.
    for out in parallel(lambda: relay_sync(a), lambda: relay_sync(b)):
        assert out["relayed_batches"] >= 1 and out["pending"] >= 1, out
    mine = {promised_a, immediate_a, promised_b}
    wait_for("the hub holds the relayed applications", lambda: mine <= set(hub.numbers()))

    # The hub's signed receipts come back through the relay: nothing is pending at the villages.
    wait_for("the receipts reach village A", lambda: relay_sync(a)["pending"] == 0)
    wait_for("the receipts reach village B", lambda: relay_sync(b)["pending"] == 0)
    receipts = ok("node", "receipts", a.dir)["batches"]
    assert receipts and all(r["state"] == "receipted" for r in receipts), receipts

    # The hub decides; the decisions travel down through the relay to the village they belong to.
    ok("hub", "transition", hub.dir, promised_a, "--to", "under_review")
    ok("hub", "transition", hub.dir, immediate_a, "--to", "completed")
    ok("hub", "transition", hub.dir, promised_b, "--to", "under_review")

    def statuses(node: Node) -> dict[str, str]:
        relay_sync(node)
        return {n: x["status"] for n, x in node.by_number().items()}

    wait_for(
        "the decisions reach village A",
        lambda: statuses(a) == {promised_a: "under_review", immediate_a: "completed"},
    )
    wait_for("the decision reaches village B", lambda: statuses(b) == {promised_b: "under_review"})

    # Every application at the hub exactly once, each from its own village.
    apps = hub.applications()
    for number in mine:
        assert [x["number"] for x in apps].count(number) == 1, number
    assert set(hub.numbers(a.code)) == {promised_a, immediate_a}
    assert set(hub.numbers(b.code)) == {promised_b}

    # The township's status shows what it carries, per village (only outer headers and sizes).
    queue = ok("node", "status", township.dir)["relay_queue"]
    assert isinstance(queue, list)
    assert all(set(q) >= {"village", "up", "down", "oldest_age_s"} for q in queue), queue
    assert ok("node", "status", a.dir)["relay_url"] == relay_url
    # The hub knows both villages reached it only through their township (the station tree marks them).
    via = {s["code"]: s["last_seen_via"] for s in ok("hub", "status", hub.dir)["stations"]}
    assert via[a.code] == via[b.code] == f"relay:{TOWNSHIP}", via


@sqlite_only  # refused by `node serve` at the station; the hub only enrolled it
def test_a_station_that_is_no_township_cannot_open_a_relay_port(hub: Hub, tmp_path: Path) -> None:
    hub.start()
    hub.enroll(TOWNSHIP, tier="township")
    code = f"{TOWNSHIP}-07"
    token = hub.enroll(code, tier="village", parent=TOWNSHIP)
    ok("node", "init", tmp_path / code, "--hub", hub.url, "--token", token)
    res = run_sanji(
        "node", "serve", tmp_path / code, "--port", free_loopback_port(), "--relay-port", free_loopback_port()
    )
    assert res.code == 2 and res.data["error"] == "not_a_township", res


@sqlite_only  # refused by `node init` before the hub is asked anything
def test_a_bad_relay_address_is_refused_before_anything_is_made(hub: Hub, tmp_path: Path) -> None:
    hub.start()
    hub.enroll(TOWNSHIP, tier="township")
    token = hub.enroll(f"{TOWNSHIP}-08", tier="village", parent=TOWNSHIP)
    res = run_sanji("node", "init", tmp_path / "v8", "--hub", hub.url, "--token", token, "--relay", "township:8720")
    assert res.code == 2 and res.data["error"] == "bad_relay", res
    assert not (tmp_path / "v8").exists()


def test_a_village_stick_goes_through_the_township(hub: Hub, tmp_path: Path, people: People) -> None:
    """The same over USB: the village's stick is read at the township, whose own sync carries it; the
    township writes the hub's answers for that village to the stick, and the village imports them."""
    hub.start()
    token = hub.enroll(TOWNSHIP, tier="township")
    township = Node(tmp_path / "township", TOWNSHIP)
    ok("node", "init", township.dir, "--hub", hub.url, "--token", token)
    code = f"{TOWNSHIP}-03"
    village = Node(tmp_path / code, code)
    ok("node", "init", village.dir, "--hub", hub.url, "--token", hub.enroll(code, tier="village", parent=TOWNSHIP))
    number = village.accept(people, IMMEDIATE)["number"]

    stick = tmp_path / "stick"
    exported = ok("node", "export", village.dir, "--out", stick)
    assert exported["changes"] >= 1
    taken = ok("node", "import", township.dir, stick)
    assert {r["village"] for r in taken["relayed"]} == {code} and taken["rejected"] == [], taken
    queue = ok("node", "status", township.dir)["relay_queue"]
    assert [q["village"] for q in queue] == [code] and queue[0]["up"] >= 1, queue
    assert number not in hub.numbers()

    assert ok("node", "sync", township.dir)["pending"] == 0  # the township's own round carries the cargo
    assert hub.numbers().count(number) == 1

    back = tmp_path / "back"
    written = ok("node", "export", township.dir, "--for", code, "--out", back)
    assert written["files"], written
    got = ok("node", "import", village.dir, back)
    assert got["rejected"] == [] and got["accepted"] == len(written["files"]), got
    assert village.status()["pending"] == 0
    assert hub.numbers().count(number) == 1

    # The hub decides; the village's next stick through the township brings the decision home.
    ok("hub", "transition", hub.dir, number, "--to", "completed")
    again = tmp_path / "again"
    ok("node", "export", village.dir, "--out", again)  # only its status now: where its feed stands
    assert {r["kind"] for r in ok("node", "import", township.dir, again)["relayed"]} == {"pull"}
    ok("node", "sync", township.dir)
    home = tmp_path / "home"
    assert ok("node", "export", township.dir, "--for", code, "--out", home)["files"]
    assert ok("node", "import", village.dir, home)["rejected"] == []
    assert village.by_number()[number]["status"] == "completed"


def test_an_offline_enrolled_village_becomes_known_through_the_township(
    hub: Hub, tmp_path: Path, people: People
) -> None:
    """Issue 17: a village enrolled from a file, never online, sends its stick through the township. Its
    claim rides as relay cargo and reaches the hub ahead of its batches, so they are accepted, not
    refused ``unknown_key``; the township's sync says the hub accepted the village."""
    hub.start()
    township = Node(tmp_path / "township", TOWNSHIP)
    ok("node", "init", township.dir, "--hub", hub.url, "--token", hub.enroll(TOWNSHIP, tier="township"))
    code = f"{TOWNSHIP}-04"
    slip = tmp_path / "v4.sje"
    token = hub.enroll(code, tier="village", parent=TOWNSHIP, out=slip)
    village = Node(tmp_path / code, code)
    ok("node", "init", village.dir, "--enrollment", slip, "--token", token)  # no hub address: offline
    number = village.accept(people, IMMEDIATE)["number"]

    stick = tmp_path / "stick"
    exported = ok("node", "export", village.dir, "--out", stick)
    assert any(f.endswith(f"{code}_claim.sjc") for f in exported["files"]), exported
    taken = ok("node", "import", township.dir, stick)
    assert taken["claims_for_hub"] == [] and taken["rejected"] == [], taken
    assert {r["kind"] for r in taken["relayed"]} >= {"claim", "batch"}, taken
    assert number not in hub.numbers()

    synced = ok("node", "sync", township.dir)
    assert synced["feed_problems"] == [], synced  # no batch refused unknown_key
    assert any(code in n and "已确认该村接入" in n for n in synced["forwarded"]), synced
    assert hub.numbers().count(number) == 1

    back = tmp_path / "back"
    written = ok("node", "export", township.dir, "--for", code, "--out", back)
    got = ok("node", "import", village.dir, back)
    assert got["rejected"] == [] and got["accepted"] == len(written["files"]), got
    assert village.status()["pending"] == 0
