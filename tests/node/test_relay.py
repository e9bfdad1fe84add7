"""The township relay, in one process: a real hub app and the real relay app on aiohttp test servers,
villages that go through the relay (node/relay_client.py), the township's forwarding (node/relay_forward.py).

The hostile cases play a relay that misbehaves by editing its own queue (relay.db) between rounds,
which is everything a malicious township can do to what it carries: drop, replay, truncate, swap two
villages' answers, or write answers of its own. Each is caught by what the hub signed (acks,
receipts, pages and their nonces) and nothing is lost or applied twice.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import keyring
from hub.app import HubConfig, create_app
from hub.appkeys import COMMITTER
from hub.service import Hub
from node import commands, relay_alert, relay_cargo, relay_client, relay_forward, relay_queue, usb_files
from node.relay_queue import DB_NAME, RelayQueue, is_village_of, now_ms, outer
from node.relay_server import create_relay_app
from node.server import create_app as station_app
from node.station import Station
from protocol.codec import pack, unpack
from protocol.document import sign_document
from replica.errors import Refused
from tests.conftest import World, materials

TOWNSHIP = "360802-T01"
V1, V2 = f"{TOWNSHIP}-01", f"{TOWNSHIP}-02"
IMMEDIATE = "360802-0001"
TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass
class Relayed:
    world: World
    hub_url: str
    relay_url: str
    township: Station
    v1: Station
    v2: Station
    hub_server: TestServer

    async def settled(self) -> None:
        """Wait until the hub's bookkeeping queued so far (a pull's report, say) is committed."""
        await self.hub_server.app[COMMITTER].submit(lambda: None)

    def queue(self) -> sqlite3.Connection:
        return sqlite3.connect(self.township.folder / DB_NAME, isolation_level=None)

    async def forward(self) -> relay_forward.Forwarded:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            signer = relay_forward.Signer(TOWNSHIP, self.township.keys.sign, self.township.hub_id)
            return await relay_forward.forward(self.township.folder, signer, session, self.hub_url)

    async def village_round(self, st: Station) -> relay_client.RelayRound:
        return await relay_client.relay_round(st, self.relay_url, TIMEOUT)

    def accept(self, st: Station) -> str:
        p = self.world.people.applicant()
        app = commands.Application(
            item=IMMEDIATE,
            name=p["name"],
            id_number=p["id_number"],
            phone=p["phone"],
            address="测试路1号",
            submitted=materials(st, IMMEDIATE),
            deferred=[],
        )
        return str(commands.accept(st, app)["number"])

    def hub_count(self, number: str) -> int:
        conn = sqlite3.connect(self.world.root / "hub" / "hub.db")
        try:
            return int(conn.execute("SELECT COUNT(*) FROM applications WHERE number=?", (number,)).fetchone()[0])
        finally:
            conn.close()


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


@contextlib.asynccontextmanager
async def relay_world(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    """A served hub, the township's served relay, and two villages (tests/node/test_relay_alert.py too)."""
    world = make_world((TOWNSHIP, "township", ""), (V1, "village", TOWNSHIP), (V2, "village", TOWNSHIP))
    codes = (TOWNSHIP, V1, V2)
    for st in world.stations:  # the served hub keeps wall time: so do the stations that talk to it
        st.close()
    world.hub.close()
    township, v1, v2 = (Station(world.root / code) for code in codes)
    world.stations = [township, v1, v2]
    world.hub = Hub.open(world.root / "hub")
    hub_server = TestServer(create_app(HubConfig(folder=world.root / "hub")))
    relay_server = TestServer(create_relay_app(township.folder, TOWNSHIP))
    await hub_server.start_server()
    await relay_server.start_server()
    try:
        yield Relayed(
            world,
            str(hub_server.make_url("")).rstrip("/"),
            str(relay_server.make_url("")).rstrip("/"),
            township,
            v1,
            v2,
            hub_server,
        )
    finally:
        await relay_server.close()
        await hub_server.close()


def pending(st: Station) -> int:
    return st.pending_changes()


async def test_up_and_down_through_the_relay_exactly_once(relayed: Relayed) -> None:
    number = relayed.accept(relayed.v1)
    first = await relayed.village_round(relayed.v1)
    assert first.queued == 1 and first.pushed == 0 and pending(relayed.v1) > 0
    assert relayed.hub_count(number) == 0  # only left at the relay so far

    done = await relayed.forward()
    assert done.batches == 1 and done.pulls == 1 and done.errors == []
    assert relayed.hub_count(number) == 1
    conn = sqlite3.connect(relayed.world.root / "hub" / "hub.db")
    sources = {str(r[0]) for r in conn.execute("SELECT source FROM batches WHERE origin=?", (V1,))}
    conn.close()
    assert sources == {"relay:360802-T01@127.0.0.1"}, sources  # the path the batch took, for the operator
    queued = relay_queue.summary_of(relayed.township.folder, TOWNSHIP, now_ms())
    assert [(q["up"], q["down"]) for q in queued] == [(0, 2)], queued  # its acks and its page wait to go down
    with relayed.queue() as conn:  # what was forwarded keeps its header facts, not its bytes
        assert conn.execute("SELECT SUM(length(data)) FROM relay_frames WHERE state='sent'").fetchone()[0] == 0

    second = await relayed.village_round(relayed.v1)
    assert second.pushed > 0 and second.problems == []
    assert pending(relayed.v1) == 0

    # Offered again, forwarded again: the hub answers a duplicate, nothing is applied twice.
    await relayed.forward()
    assert relayed.hub_count(number) == 1


async def test_a_relay_that_swaps_two_villages_answers_is_caught(relayed: Relayed) -> None:
    n1, n2 = relayed.accept(relayed.v1), relayed.accept(relayed.v2)
    await relayed.village_round(relayed.v1)
    await relayed.village_round(relayed.v2)
    await relayed.forward()
    with relayed.queue() as conn:  # the relay hands V1's receipts to V2 and V2's to V1
        conn.execute(f"UPDATE relay_frames SET village = CASE village WHEN '{V1}' THEN '{V2}' ELSE '{V1}' END")

    for st in (relayed.v1, relayed.v2):
        rnd = await relayed.village_round(st)
        assert rnd.pushed == 0 and pending(st) > 0, "a receipt for another station settles nothing"
        assert any("未通过核验" in p for p in rnd.problems), rnd.problems

    # The relay behaves again: the batches still pending are offered, forwarded, receipted once.
    await relayed.forward()
    for st in (relayed.v1, relayed.v2):
        await relayed.village_round(st)
        assert pending(st) == 0
    assert relayed.hub_count(n1) == 1 and relayed.hub_count(n2) == 1


async def test_a_receipt_the_relay_wrote_itself_is_refused(relayed: Relayed) -> None:
    relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)
    hashes = [bytes(r[0]) for r in relayed.v1.conn.execute("SELECT hash FROM outbox").fetchall()]
    forged = sign_document(
        "acks",
        {"acks": [{"batch": h, "result": "applied", "expected": 0, "reason": ""} for h in hashes]},
        signer=relayed.world.hub.hub_id,
        recipient=V1,
        signing_key=relayed.township.keys.sign,  # the township's own key: all a relay has
    )
    RelayQueue(relayed.township.folder, TOWNSHIP).answered(V1, [], "acks", forged, now_ms())
    rnd = await relayed.village_round(relayed.v1)
    assert rnd.pushed == 0 and pending(relayed.v1) > 0
    assert any("未通过核验" in p for p in rnd.problems), rnd.problems


async def test_a_replayed_or_truncated_page_is_refused_and_nothing_applies_twice(relayed: Relayed) -> None:
    number = relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)
    await relayed.forward()
    with relayed.queue() as conn:
        page = bytes(conn.execute("SELECT data FROM relay_frames WHERE kind='feed'").fetchone()[0])
    await relayed.village_round(relayed.v1)
    cursor = relayed.v1.meta.int("feed_cursor")

    # Replayed: the genuine page again, its nonce already answered.
    RelayQueue(relayed.township.folder, TOWNSHIP).answered(V1, [], "feed", page, now_ms())
    rnd = await relayed.village_round(relayed.v1)
    assert any("重放" in p for p in rnd.problems), rnd.problems
    assert relayed.v1.meta.int("feed_cursor") == cursor

    # Truncated: whatever the relay cuts, the page no longer verifies and nothing of it is applied.
    await relayed.forward()
    with relayed.queue() as conn:
        conn.execute("UPDATE relay_frames SET data = substr(data, 1, length(data) - 40) WHERE kind='feed'")
    rnd = await relayed.village_round(relayed.v1)
    assert rnd.pulled == 0 and rnd.problems, rnd
    assert relayed.hub_count(number) == 1 and len(commands.applications(relayed.v1)) == 1


async def test_a_village_cut_off_from_the_hub_follows_its_key_rotation_through_the_relay(relayed: Relayed) -> None:
    """Found by the fault simulator (tests/sim/relay.py, seed 0): after `hub rotate-key`, a village that
    reaches only its relay could verify none of the hub's acks or pages, for as long as it stayed cut
    off. The township's forwarding now keeps the hub's key history, and the village follows it from the
    root it pinned, as from the hub."""
    number = relayed.accept(relayed.v1)
    before = relayed.v1.meta.int("hub_keys_version")
    version = int(str(keyring.rotate_key(relayed.world.hub)["version"]))
    assert version > before
    await relayed.village_round(relayed.v1)
    done = await relayed.forward()
    assert done.batches == 1 and done.errors == [], done
    assert relayed.hub_count(number) == 1

    rnd = await relayed.village_round(relayed.v1)
    assert rnd.problems == [], rnd.problems  # acks and page signed by the new key: verified
    assert relayed.v1.meta.int("hub_keys_version") == version
    assert pending(relayed.v1) == 0


async def test_a_key_history_the_relay_altered_is_refused(relayed: Relayed) -> None:
    """The relay keeps the history as bytes it cannot sign: altered, the village follows nothing."""
    relayed.accept(relayed.v1)
    before = relayed.v1.meta.int("hub_keys_version")
    keyring.rotate_key(relayed.world.hub)
    await relayed.village_round(relayed.v1)
    await relayed.forward()
    kept = relayed.township.folder / relay_queue.KEYS_NAME
    bundle = unpack(kept.read_bytes())
    last = bytearray(bundle["docs"][-1])
    last[-1] ^= 1  # the newest key list's signature
    kept.write_bytes(pack({**bundle, "docs": [*bundle["docs"][:-1], bytes(last)]}))
    rnd = await relayed.village_round(relayed.v1)
    assert relayed.v1.meta.int("hub_keys_version") == before
    assert any("密钥" in p for p in rnd.problems), rnd.problems
    assert pending(relayed.v1) > 0  # nothing settled on the word of a key it could not follow
    alert = relay_alert.current(relayed.v1)  # and the relay that altered it is named
    assert alert is not None and alert["problem"] == "bad_keys", alert


async def test_a_dropped_batch_is_offered_again_and_arrives_once(relayed: Relayed) -> None:
    number = relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)
    with relayed.queue() as conn:
        conn.execute("DELETE FROM relay_frames WHERE kind='batch'")  # the relay drops it
    await relayed.forward()
    assert relayed.hub_count(number) == 0 and pending(relayed.v1) > 0  # delayed, not lost
    await relayed.village_round(relayed.v1)  # offered again
    await relayed.forward()
    await relayed.village_round(relayed.v1)
    assert relayed.hub_count(number) == 1 and pending(relayed.v1) == 0


async def test_the_relay_takes_only_its_own_villages_within_its_quota(relayed: Relayed, tmp_path: Path) -> None:
    assert is_village_of(TOWNSHIP, V1) and not is_village_of(TOWNSHIP, TOWNSHIP)
    assert not is_village_of(TOWNSHIP, "360802-T02-01") and not is_village_of(TOWNSHIP, f"{V1}-9")
    relayed.accept(relayed.township)
    own = relayed.world.frames(relayed.township)
    queue = RelayQueue(tmp_path, TOWNSHIP)
    with pytest.raises(Refused) as refused:
        queue.offer_up(own, now_ms())
    assert refused.value.code == "not_our_village"
    relayed.accept(relayed.v1)
    frames = relayed.world.frames(relayed.v1)
    head = outer(frames[0])
    assert head.origin == V1 and head.kind == "batch" and head.first_seq == 1
    import node.relay_queue as rq

    quota = rq.VILLAGE_QUOTA_BYTES
    rq.VILLAGE_QUOTA_BYTES = head.size - 1
    try:
        full = queue.offer_up(frames, now_ms())
        assert full.taken == 0 and full.refusal is not None and full.refusal.code == "relay_full"
        assert "乡镇转发队列已满" in str(full.refusal) and queue.summary(now_ms()) == []
    finally:
        rq.VILLAGE_QUOTA_BYTES = quota
    village, answers, taken, refusal = queue.offer_up(frames, now_ms())
    assert village == V1 and answers == [] and taken == len(frames) and refusal is None
    summary = queue.summary(now_ms())
    assert summary == [{"village": V1, "up": len(frames), "down": 0, "bytes": head.size, "oldest_age_s": 0}]
    assert queue.expire(now_ms() + rq.EXPIRY_MS + 1) == len(frames)
    queue.close()


async def test_usb_through_the_township(relayed: Relayed, tmp_path: Path) -> None:
    number = relayed.accept(relayed.v1)
    stick = tmp_path / "stick"
    usb_files.export(relayed.v1, stick)  # at the village: its batches and its status, for the hub

    taken = usb_files.import_files(relayed.township, [stick])  # at the township: relay cargo
    assert {r["kind"] for r in taken["relayed"]} == {"batch", "pull"} and taken["rejected"] == [], taken
    assert {q["village"] for q in relay_queue.summary_of(relayed.township.folder, TOWNSHIP, now_ms())} == {V1}

    done = await relayed.forward()  # the township's round with the hub
    assert done.batches == 1 and relayed.hub_count(number) == 1

    back = tmp_path / "back"
    written = relay_cargo.export_for(relayed.township, V1, back)
    assert written["files"] and all(Path(f).name.startswith(V1) for f in written["files"]), written
    again = relay_cargo.export_for(relayed.township, V1, tmp_path / "again")["files"]
    assert [f for f in again if not f.endswith(".sjk")] == []  # the hub's answers handed over once (the keys each time)
    with pytest.raises(Refused):
        relay_cargo.export_for(relayed.township, "360802-T02-01", tmp_path / "other")

    got = usb_files.import_files(relayed.v1, [back])  # back at the village: verified as the hub's own
    assert got["rejected"] == [] and got["accepted"] >= 1, got
    assert pending(relayed.v1) == 0


async def test_usb_cargo_for_another_village_is_refused_at_the_village(relayed: Relayed, tmp_path: Path) -> None:
    relayed.accept(relayed.v1)
    stick = tmp_path / "stick"
    usb_files.export(relayed.v1, stick)
    usb_files.import_files(relayed.township, [stick])
    await relayed.forward()
    back = tmp_path / "back"
    relay_cargo.export_for(relayed.township, V1, back)
    got = usb_files.import_files(relayed.v2, [back])  # handed to the wrong village
    # Only the hub's key history is taken: it is public and the same for every station.
    assert got["rejected"] and got["accepted"] == 1, got
    assert pending(relayed.v1) > 0


async def test_the_township_window_shows_its_relay_queue(relayed: Relayed) -> None:
    relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)
    app = station_app(relayed.township.folder, 3600.0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get("/")
        html = await resp.text()
    assert resp.status == 200
    row = re.search(r'<details class="notice info" id="relay-queue">.*?</details>', html, re.S)
    assert row is not None, "no relay queue on the township's window"
    cells = re.findall(r"<td>([^<]*)</td>", row.group(0))
    assert cells[:3] == [V1, "2", "0"], cells  # its batch and its pull request wait to go up


async def test_node_sync_goes_through_the_relay_and_a_full_relay_is_a_clear_refusal(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node import client

    st = relayed.v1
    with st.transaction():
        st.meta.set("hub_url", "http://127.0.0.1:9")  # nothing answers there
        st.meta.set("relay_url", relayed.relay_url)
    relayed.accept(st)
    monkeypatch.setattr(relay_queue, "VILLAGE_QUOTA_BYTES", 1)
    full = await client.sync_round(st)  # the round goes on (its pull request left) and says why
    assert full.via == "relay" and full.relayed_batches == 0
    assert any("乡镇转发队列已满" in p for p in full.feed_problems) and "乡镇转发队列已满" in st.meta.text("last_error")
    assert pending(st) > 0  # nothing lost: the batches wait in the outbox
    monkeypatch.undo()
    result = await client.sync_round(st)
    assert result.via == "relay" and result.relayed_batches == 1 and result.pending > 0
