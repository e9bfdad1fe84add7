"""A relay that misbehaves is raised as an alert naming it, at the village and at the hub, and the
village stops going through it for a while (node/relay_alert.py, hub/relay_alerts.py).

Each misbehaviour of tests/node/test_relay.py is played again (the relay editing its own queue), and
then: the village's status and window name the township and say what to do; the village's next direct
round carries its signed report to the hub, which raises one alert naming the township and the village.
What the hub sees itself (a forwarded frame that does not verify, another township's batch, a gap the
relay opened) is raised there without any village's word. A relay that forwards nothing is caught by
the village's clock (node/relay_withheld.py), driven here by shifting the village's clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub import operations
from hub import usb_files as hub_usb
from node import client, relay_alert, relay_client, relay_forward, relay_withheld, status, usb_files
from node.relay_queue import RelayQueue, now_ms
from node.server import create_app as station_app
from node.station import Station
from protocol.codec import pack
from protocol.document import sign_document
from protocol.keys import key_id, public_bytes, signing_key_from_seed
from replica.errors import Unreachable
from tests.conftest import World
from tests.node.test_relay import TOWNSHIP, V1, V2, Relayed, relay_world


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


def hub_alerts(r: Relayed, kind: str) -> list[tuple[str, str]]:
    conn = sqlite3.connect(r.world.root / "hub" / "hub.db")
    try:
        rows = conn.execute("SELECT station, detail FROM alerts WHERE kind=? ORDER BY id", (kind,)).fetchall()
    finally:
        conn.close()
    return [(str(a), str(b)) for a, b in rows]


async def swapped(r: Relayed) -> str:
    r.accept(r.v1), r.accept(r.v2)
    await r.village_round(r.v1)
    await r.village_round(r.v2)
    await r.forward()
    with r.queue() as conn:
        conn.execute(f"UPDATE relay_frames SET village = CASE village WHEN '{V1}' THEN '{V2}' ELSE '{V1}' END")
    return "bad_acks"


async def forged_receipt(r: Relayed) -> str:
    r.accept(r.v1)
    await r.village_round(r.v1)
    hashes = [bytes(row[0]) for row in r.v1.conn.execute("SELECT hash FROM outbox").fetchall()]
    forged = sign_document(
        "acks",
        {"acks": [{"batch": h, "result": "applied", "expected": 0, "reason": ""} for h in hashes]},
        signer=r.world.hub.hub_id,
        recipient=V1,
        signing_key=r.township.keys.sign,
    )
    RelayQueue(r.township.folder, TOWNSHIP).answered(V1, [], "acks", forged, now_ms())
    return "bad_acks"


async def replayed_page(r: Relayed) -> str:
    r.accept(r.v1)
    await r.village_round(r.v1)
    await r.forward()
    with r.queue() as conn:
        page = bytes(conn.execute("SELECT data FROM relay_frames WHERE kind='feed'").fetchone()[0])
    await r.village_round(r.v1)
    RelayQueue(r.township.folder, TOWNSHIP).answered(V1, [], "feed", page, now_ms())
    return "replayed_page"


async def truncated_page(r: Relayed) -> str:
    r.accept(r.v1)
    await r.village_round(r.v1)
    await r.forward()
    with r.queue() as conn:
        conn.execute("UPDATE relay_frames SET data = substr(data, 1, length(data) - 40) WHERE kind='feed'")
    return "bad_page"


MISDEEDS: dict[str, Callable[[Relayed], Awaitable[str]]] = {
    "swap": swapped,
    "forged_receipt": forged_receipt,
    "replay": replayed_page,
    "truncation": truncated_page,
}


@pytest.mark.parametrize("case", sorted(MISDEEDS))
async def test_a_misbehaving_relay_is_named_at_the_village_and_then_at_the_hub(relayed: Relayed, case: str) -> None:
    expected = await MISDEEDS[case](relayed)
    st = relayed.v1
    rnd = await relayed.village_round(st)
    assert rnd.misdeeds and rnd.misdeeds[0][0] == expected, rnd

    shown = status.gather(st, hub_reachable=None)["relay_alert"]
    assert isinstance(shown, dict), shown
    assert shown["relay"] == TOWNSHIP and shown["problem"] == expected and shown["url"] == relayed.relay_url
    assert shown["paused"] and not shown["reported"]
    assert f"乡镇中转站 {TOWNSHIP}" in str(shown["words"]) and "U 盘" in str(shown["words"])
    assert f"乡镇中转站 {TOWNSHIP}" in status.text(status.gather(st, hub_reachable=None))
    app = station_app(st.folder, 3600.0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as browser:
        html = await (await browser.get("/")).text()
    assert 'id="relay-alert"' in html and f"乡镇中转站 {TOWNSHIP}" in html
    assert hub_alerts(relayed, "relay") == []  # the hub has not heard yet

    await client.sync_round(st, relayed.hub_url)  # the village's next round with the hub itself
    await relayed.settled()
    raised = hub_alerts(relayed, "relay")
    assert len(raised) == 1 and raised[0][0] == TOWNSHIP, raised
    assert f"乡镇中转站 {TOWNSHIP} 异常" in raised[0][1] and V1 in raised[0][1], raised
    # Settled only by the hub's signed echo of what it recorded, which the next round's page carries
    # (the first round's page was written before the bookkeeping: hub/relay_reports.py).
    await client.sync_round(st, relayed.hub_url)
    await relayed.settled()
    current = relay_alert.current(st)
    assert current is not None and current["reported_ms"] > 0
    assert len(hub_alerts(relayed, "relay")) == 1  # the report sent again was not a second alert
    words = [a["detail"] for a in operations.status(relayed.world.hub)["alerts"] if a["kind"] == "relay"]
    assert words == [raised[0][1]]  # `hub status` lists it


async def test_the_village_falls_back_to_the_direct_link_or_usb_while_the_relay_is_paused(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = relayed.v1
    with st.transaction():
        st.meta.set("hub_url", "http://127.0.0.1:9")  # nothing answers there: the relay is the only line
        st.meta.set("relay_url", relayed.relay_url)
    await forged_receipt(relayed)
    caught = await client.sync_round(st)
    assert caught.via == "relay" and any(f"乡镇中转站 {TOWNSHIP}" in p for p in caught.feed_problems), caught

    relayed.accept(st)
    with relayed.queue() as conn:
        before = conn.execute("SELECT COUNT(*), MAX(created_ms) FROM relay_frames").fetchone()
    with pytest.raises(Unreachable) as gone:
        await client.sync_round(st)
    assert f"乡镇中转站 {TOWNSHIP}" in str(gone.value) and "U 盘" in str(gone.value)
    assert f"乡镇中转站 {TOWNSHIP}" in st.meta.text("last_error")
    with relayed.queue() as conn:  # the relay was not used at all
        assert conn.execute("SELECT COUNT(*), MAX(created_ms) FROM relay_frames").fetchone() == before

    # The stick: its status file carries the report, and the hub raises it on import.
    stick = relayed.world.root / "stick"
    usb_files.export(st, stick)
    got = hub_usb.import_files(relayed.world.hub, [stick])
    assert got["rejected"] == [], got
    assert [s for s, _ in hub_alerts(relayed, "relay")] == [TOWNSHIP]

    # Once the pause is over the relay is tried again; a clean round clears the alert, once the hub's
    # page has echoed the report (until then it stays, pausing nothing, so the report is not lost).
    monkeypatch.setattr(relay_alert, "PAUSE_MS", 0)
    with relayed.queue() as conn:  # the forged answer was handed over already; nothing else is wrong
        conn.execute("DELETE FROM relay_frames WHERE direction='down'")
    again = await client.sync_round(st)
    assert again.via == "relay" and again.feed_problems == [], again
    assert relay_alert.paused(st) is None and relay_alert.to_report(st) is not None
    await relayed.forward()
    again = await client.sync_round(st)  # the hub's page, through the relay, echoes the stick's report
    assert again.via == "relay" and relay_alert.current(st) is None, again
    assert status.gather(st, hub_reachable=None)["relay_alert"] is None


async def post_through(
    r: Relayed, frames: list[bytes], relay: str = TOWNSHIP, key: Ed25519PrivateKey | None = None
) -> int:
    """Push as township ``relay`` forwarding, with its proof (signed by ``key``, by default T01's)."""
    body = pack(frames)
    proof = relay_forward.Signer(relay, key or r.township.keys.sign, r.township.hub_id).headers(
        "/v1/sync/push", body, now_ms()
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{r.hub_url}/v1/sync/push",
            data=body,
            headers={"Content-Type": "application/vnd.sanji.frames+msgpack", **proof},
        ) as resp,
    ):
        return resp.status


def another_township(r: Relayed, code: str) -> Ed25519PrivateKey:
    """A second township the hub knows, with its station key: only its own proof names it."""
    key = signing_key_from_seed(bytes(32))
    store = r.world.hub.store
    with store.transaction():
        store.add_station(code, "另一乡镇", "township", "", 1)
        store.set_station_keys(code, public_bytes(key), bytes(32), key_id(public_bytes(key)), 1)
    return key


async def test_the_hub_names_a_relay_whose_forwarded_frame_does_not_verify(relayed: Relayed) -> None:
    relayed.accept(relayed.v1)
    frame = relayed.world.frames(relayed.v1)[0]
    tampered = frame[:-1] + bytes([frame[-1] ^ 1])  # the header still says whose it claims to be
    assert await post_through(relayed, [tampered]) >= 400
    seen = hub_alerts(relayed, "relay_seen")
    assert len(seen) == 1 and seen[0][0] == TOWNSHIP and "未通过核验" in seen[0][1] and V1 in seen[0][1], seen


async def test_the_hub_names_a_relay_that_forwards_a_station_not_its_own(relayed: Relayed) -> None:
    relayed.accept(relayed.v2)
    frames = relayed.world.frames(relayed.v2)
    t02 = another_township(relayed, "360802-T02")
    assert await post_through(relayed, frames, relay="360802-T02", key=t02) == 200  # authentic: taken all the same
    seen = hub_alerts(relayed, "relay_seen")
    assert [s for s, _ in seen] == ["360802-T02"] and "非其下辖站点" in seen[0][1] and V2 in seen[0][1], seen
    assert await post_through(relayed, frames) == 200  # its own township: a duplicate, no alert
    assert len(hub_alerts(relayed, "relay_seen")) == 1


async def test_the_hub_names_a_relay_that_withholds_a_batch(relayed: Relayed) -> None:
    first = relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)
    second = relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)
    with relayed.queue() as conn:  # the relay keeps back the first batch and forwards the second
        conn.execute(
            "DELETE FROM relay_frames WHERE kind='batch'"
            " AND first_seq=(SELECT MIN(first_seq) FROM relay_frames WHERE kind='batch')"
        )
    await relayed.forward()
    assert relayed.hub_count(first) == 0 and relayed.hub_count(second) == 0  # a gap: nothing applied
    seen = hub_alerts(relayed, "relay_seen")
    assert len(seen) == 1 and seen[0][0] == TOWNSHIP and "扣下" in seen[0][1] and V1 in seen[0][1], seen
    # The village offers what is unsettled again; the relay behaves: both arrive, once. (A batch the
    # relay already forwarded waits there until the answers it holds are collected: a few rounds.)
    for _ in range(4):
        await relayed.village_round(relayed.v1)
        await relayed.forward()
    assert relayed.hub_count(first) == 1 and relayed.hub_count(second) == 1
    assert len(hub_alerts(relayed, "relay_seen")) == 1  # nothing more to blame it for


def test_a_report_from_a_station_about_a_township_not_its_own_is_not_raised(relayed: Relayed) -> None:
    from hub import relay_alerts

    store = relayed.world.hub.store
    with store.transaction():
        assert not relay_alerts.reported(store, V1, "360802-T02", "bad_acks", 1, 2)
        assert relay_alerts.reported(store, V1, TOWNSHIP, "bad_acks", 1, 2)
        assert not relay_alerts.reported(store, V1, TOWNSHIP, "bad_acks", 1, 3)  # the same report again
    assert len(hub_alerts(relayed, "relay")) == 1


HOUR = 3600 * 1000


class Shifted:
    """The village's clock, moved on by hand; wall time underneath, like the served hub's."""

    def __init__(self) -> None:
        self.by = 0

    def __call__(self) -> int:
        return now_ms() + self.by


def with_clock(r: Relayed, clock: Shifted, restart: bool = False) -> Station:
    if restart:  # the station folder opened afresh: whatever the clocks keep must be on disk
        r.v1.close()
        r.v1 = Station(r.v1.folder, clock=clock)
    r.v1.clock = clock
    return r.v1


def drop_everything(r: Relayed) -> None:
    with r.queue() as conn:
        conn.execute("DELETE FROM relay_frames")


async def test_a_relay_that_forwards_nothing_is_named_after_the_bound_and_not_before(relayed: Relayed) -> None:
    # Run back in time, so that the last rounds happen at the hub's own time: it refuses a pull request
    # signed far from its clock.
    clock = Shifted()
    clock.by = -relay_withheld.WITHHELD_MS - HOUR
    st = with_clock(relayed, clock)
    number = relayed.accept(st)
    await relayed.village_round(st)
    drop_everything(relayed)
    clock.by = -2 * HOUR  # 11 hours on
    rnd = await relayed.village_round(st)
    drop_everything(relayed)
    assert rnd.misdeeds == [] and relay_alert.current(st) is None, rnd

    st = with_clock(relayed, clock, restart=True)
    clock.by = 0  # 13 hours on
    rnd = await relayed.village_round(st)
    assert [m for m, _ in rnd.misdeeds] == ["withheld"] and "1 个批次" in rnd.misdeeds[0][1], rnd
    shown = status.gather(st, hub_reachable=None)["relay_alert"]
    assert isinstance(shown, dict) and shown["relay"] == TOWNSHIP and shown["problem"] == "withheld", shown
    assert shown["paused"] and not shown["reported"]
    assert f"超过 {relay_withheld.HOURS} 小时仍未送到区局（可能被扣下或延误）" in str(shown["words"]), shown
    assert "仍保存在本站" in str(shown["words"]) and "U 盘" in str(shown["words"]), shown
    assert relayed.hub_count(number) == 0 and hub_alerts(relayed, "relay") == []

    # The village's next round with the hub itself carries the report, and the batch with it.
    await client.sync_round(st, relayed.hub_url)
    await relayed.settled()
    raised = hub_alerts(relayed, "relay")
    assert len(raised) == 1 and raised[0][0] == TOWNSHIP, raised
    assert "长时间未送到区局" in raised[0][1] and V1 in raised[0][1] and "变更仍保存在该村" in raised[0][1], raised
    assert relayed.hub_count(number) == 1
    await client.sync_round(st, relayed.hub_url)  # its page echoes the report the hub recorded
    reported = relay_alert.current(st)
    assert reported is not None and reported["reported_ms"] > 0
    # Its receipt came directly: nothing is owed through the relay any more.
    assert relay_withheld.overdue(st) is None and st.meta.get("relay_left") == {}


async def test_a_relay_that_forwards_late_but_within_the_bound_is_not_named(relayed: Relayed) -> None:
    clock = Shifted()
    st = with_clock(relayed, clock)
    number = relayed.accept(st)
    await relayed.village_round(st)
    clock.by = relay_withheld.WITHHELD_MS - HOUR
    await relayed.forward()  # late, but within the bound
    rnd = await relayed.village_round(st)
    assert rnd.misdeeds == [] and relayed.hub_count(number) == 1, rnd
    assert st.pending_changes() == 0
    clock.by = relay_withheld.WITHHELD_MS + 2 * HOUR  # long after the first batch was left: it is settled
    rnd = await relayed.village_round(st)
    assert rnd.misdeeds == [] and relay_alert.current(st) is None, rnd
    assert status.gather(st, hub_reachable=None)["relay_alert"] is None


async def test_the_hours_a_relay_cannot_be_reached_do_not_count(relayed: Relayed) -> None:
    clock = Shifted()
    st = with_clock(relayed, clock)
    relayed.accept(st)
    await relayed.village_round(st)
    drop_everything(relayed)
    clock.by = 5 * HOUR
    with pytest.raises(aiohttp.ClientError):  # the township is down: nothing is blamed on it
        await relay_client.relay_round(st, "http://127.0.0.1:9", aiohttp.ClientTimeout(total=5))
    assert relay_alert.current(st) is None
    clock.by = 5 * HOUR + 2 * relay_withheld.WITHHELD_MS  # back after a long silence: 5 hours counted
    rnd = await relayed.village_round(st)
    drop_everything(relayed)
    assert rnd.misdeeds == [] and relay_alert.current(st) is None, rnd
    clock.by += relay_withheld.WITHHELD_MS - 4 * HOUR  # 13 hours of it answering
    rnd = await relayed.village_round(st)
    assert [m for m, _ in rnd.misdeeds] == ["withheld"], rnd


async def test_a_relay_that_forwards_batches_but_keeps_the_pages_is_named_too(relayed: Relayed) -> None:
    clock = Shifted()
    clock.by = -relay_withheld.WITHHELD_MS - HOUR
    st = with_clock(relayed, clock)
    number = relayed.accept(st)
    for by in (-relay_withheld.WITHHELD_MS - HOUR, -2 * HOUR, 0):
        clock.by = by
        rnd = await relayed.village_round(st)
        await relayed.forward()
        with relayed.queue() as conn:  # the hub's pages never reach the village
            conn.execute("DELETE FROM relay_frames WHERE kind='feed'")
        if by < 0:
            assert rnd.misdeeds == [], rnd
    assert relayed.hub_count(number) == 1 and st.pending_changes() == 0  # its receipt came through
    assert [m for m, _ in rnd.misdeeds] == ["withheld"] and "取数请求" in rnd.misdeeds[0][1], rnd
