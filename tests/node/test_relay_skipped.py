"""A relay that carries a village's later pull request but keeps an earlier batch back is named at once
(``skipped``), by the hub's signed page alone: no clock (sync/relay_evidence.py, node/relay_skipped.py).
A relay that is merely slow, or a batch left after the request the page answers, is not named.

The relay misbehaves by editing its own queue (relay.db), as in tests/node/test_relay.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node import client, relay_alert, relay_client, relay_forward, relay_skipped, relay_withheld, status, uplink
from node.relay_queue import RelayQueue, now_ms
from tests.conftest import World
from tests.node.test_relay import TOWNSHIP, V1, Relayed, relay_world
from tests.node.test_relay_alert import HOUR, Shifted, hub_alerts, with_clock


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


def batches_waiting(r: Relayed) -> int:
    with r.queue() as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM relay_frames WHERE kind='batch' AND state='waiting'").fetchone()[0]
        )


async def test_a_relay_that_forwards_the_pull_but_holds_the_batch_is_named_at_once(relayed: Relayed) -> None:
    st = relayed.v1
    number = relayed.accept(st)
    first = await relayed.village_round(st)  # the batch, then a pull request, left at the relay
    assert first.queued == 1 and first.misdeeds == []
    seqs = st.conn.execute("SELECT first_seq, last_seq FROM outbox WHERE state='pending'").fetchone()
    with relayed.queue() as conn:  # the relay keeps the batch back and carries the request
        conn.execute("UPDATE relay_frames SET state='held' WHERE kind='batch'")
    done = await relayed.forward()
    assert done.batches == 0 and done.pulls == 1 and relayed.hub_count(number) == 0

    rnd = await relayed.village_round(st)  # no clock moved: the hub's signed page is the proof
    assert [m for m, _ in rnd.misdeeds] == ["skipped"], rnd
    assert f"第 {seqs[0]}–{seqs[1]} 条变更" in rnd.misdeeds[0][1], rnd
    shown = status.gather(st, hub_reachable=None)["relay_alert"]
    assert isinstance(shown, dict) and shown["problem"] == "skipped" and shown["relay"] == TOWNSHIP, shown
    words = str(shown["words"])
    assert shown["paused"] and "却没有先把本站之前交给它的批次送到区局（扣下或未按次序转发" in words, shown
    assert "仍保存在本站" in str(shown["words"]) and "U 盘" in str(shown["words"]), shown
    assert st.pending_changes() > 0  # nothing lost: the batch waits here for another way

    # The fallback: the direct link carries the batch and the report; the hub names the relay.
    await client.sync_round(st, relayed.hub_url)
    await relayed.settled()
    assert relayed.hub_count(number) == 1 and st.pending_changes() == 0
    raised = hub_alerts(relayed, "relay")
    assert len(raised) == 1 and raised[0][0] == TOWNSHIP, raised
    assert "却没有先把村之前交给它的批次送到区局（扣下或未按次序转发" in raised[0][1], raised
    assert "变更仍保存在该村" in raised[0][1] and V1 in raised[0][1], raised


async def test_a_relay_that_forwards_out_of_order_is_named_in_words_that_fit(relayed: Relayed) -> None:
    """A relay that sends a later batch and the request ahead of an earlier batch, and the earlier one
    only afterwards: the hub refuses the later one as a gap, the earlier still waits here when the page
    comes back, and the same proof names it; the words say "kept back or out of order", not only the first.
    """
    st = relayed.v1
    first = relayed.accept(st)
    await relayed.village_round(st)
    second = relayed.accept(st)
    await relayed.village_round(st)
    held = "first_seq=(SELECT MIN(first_seq) FROM relay_frames WHERE kind='batch')"
    with relayed.queue() as conn:  # the relay sends the second batch and the request ahead of the first
        conn.execute(f"UPDATE relay_frames SET state='held' WHERE kind='batch' AND {held}")
    done = await relayed.forward()
    assert done.pulls == 1 and relayed.hub_count(first) == 0 and relayed.hub_count(second) == 0, done
    seen = hub_alerts(relayed, "relay_seen")  # the hub's own sight of the gap
    assert len(seen) == 1 and "可能扣下了批次或未按次序转发" in seen[0][1], seen

    rnd = await relayed.village_round(st)
    assert [m for m, _ in rnd.misdeeds] == ["skipped"], rnd
    words = str(status.gather(st, hub_reachable=None)["relay_alert"]["words"])
    assert "（扣下或未按次序转发，区局签名的应答为证）" in words, words
    with relayed.queue() as conn:  # and only now the first batch
        conn.execute("UPDATE relay_frames SET state='waiting' WHERE state='held'")
    await relayed.forward()
    assert relayed.hub_count(first) == 1 and relayed.hub_count(second) == 0

    await client.sync_round(st, relayed.hub_url)  # the fallback: the direct link, and the report
    await relayed.settled()
    assert relayed.hub_count(first) == 1 and relayed.hub_count(second) == 1 and st.pending_changes() == 0
    raised = hub_alerts(relayed, "relay")
    assert len(raised) == 1 and "（扣下或未按次序转发，区局签名的应答为证）" in raised[0][1], raised


async def test_a_relay_slow_with_both_the_batch_and_the_request_is_not_named_before_the_bound(
    relayed: Relayed,
) -> None:
    clock = Shifted()
    st = with_clock(relayed, clock)
    number = relayed.accept(st)
    await relayed.village_round(st)
    clock.by = relay_withheld.WITHHELD_MS - HOUR  # 11 hours of it answering, nothing forwarded yet
    rnd = await relayed.village_round(st)
    assert rnd.misdeeds == [] and relay_alert.current(st) is None, rnd
    assert batches_waiting(relayed) == 1
    clock.by = 0  # the township's round, late: both go, in order
    await relayed.forward()
    rnd = await relayed.village_round(st)
    assert rnd.misdeeds == [] and relay_alert.current(st) is None, rnd
    assert relayed.hub_count(number) == 1 and st.pending_changes() == 0


async def test_a_batch_left_after_the_request_the_page_answers_is_in_flight_not_skipped(relayed: Relayed) -> None:
    st = relayed.v1
    await relayed.village_round(st)  # nothing to push: a pull request alone
    await relayed.forward()  # its page waits at the relay, saying the hub expects our next seq
    number = relayed.accept(st)
    rnd = await relayed.village_round(st)  # the batch is left, then the page (of the earlier request) collected
    assert rnd.queued == 1 and rnd.misdeeds == [], rnd
    assert relayed.hub_count(number) == 0 and relay_alert.current(st) is None
    await relayed.forward()
    rnd = await relayed.village_round(st)
    assert rnd.misdeeds == [] and relayed.hub_count(number) == 1 and st.pending_changes() == 0, rnd


async def test_the_relay_carries_no_request_ahead_of_a_batch_the_hub_did_not_take(relayed: Relayed) -> None:
    """The order the village's proof relies on: a push the hub did not take (busy) stops the village's
    forwarding for the round, so its pull request never overtakes the batch."""
    relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)
    seen: list[str] = []

    async def busy(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"error": "busy"}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", busy)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            signer = relay_forward.Signer(TOWNSHIP, relayed.township.keys.sign, relayed.township.hub_id)
            done = await relay_forward.forward(relayed.township.folder, signer, session, str(server.make_url("")))
    finally:
        await server.close()
    assert "/v1/sync/push" in seen and "/v1/sync/pull" not in seen, seen
    assert done.pulls == 0 and any("503" in e for e in done.errors), done
    assert batches_waiting(relayed) == 1  # still waiting, in its place, for the next round
    await relayed.forward()  # the hub takes it now: both go, in order
    rnd = await relayed.village_round(relayed.v1)
    assert rnd.misdeeds == [] and relayed.v1.pending_changes() == 0, rnd


def test_an_expired_batch_takes_its_village_pull_request_with_it(relayed: Relayed) -> None:
    queue = RelayQueue(relayed.township.folder, TOWNSHIP)
    try:
        relayed.accept(relayed.v1)
        frames = relayed.world.frames(relayed.v1)
        long_ago = now_ms() - 15 * 24 * HOUR
        queue.offer_up(frames, long_ago)
        queue.offer_pull(uplink.pull_frame(relayed.v1, 0, b"n" * 16), now_ms())
        assert queue.waiting_pull(V1) is not None
        assert queue.expire(now_ms()) >= 1
        assert queue.waiting_batches(V1) == [] and queue.waiting_pull(V1) is None
    finally:
        queue.close()


async def test_a_batch_and_request_left_while_the_relay_forwards_wait_in_order(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The village leaves a batch and a request while the township is forwarding: the request read
    before the batches goes, the new one waits with its batch, and nothing is blamed."""
    st = relayed.v1
    await relayed.village_round(st)  # a pull request alone
    number = relayed.accept(st)
    original = RelayQueue.waiting_batches

    def meanwhile(queue: RelayQueue, village: str) -> list[tuple[int, bytes]]:
        found = original(queue, village)
        if village == V1 and not found:  # the village's round lands now, as relay_client.py does it
            uplink.build_outbox(st)
            unsettled = uplink.unsettled(st)
            queue.offer_up([f for _, f in unsettled], now_ms())
            relay_skipped.left(st, [o.batch_hash for o, _ in unsettled])
            nonce = b"m" * 16
            relay_client._remember(st, nonce)
            queue.offer_pull(uplink.pull_frame(st, st.meta.int("feed_cursor"), nonce), now_ms())
        return found

    monkeypatch.setattr(RelayQueue, "waiting_batches", meanwhile)
    done = await relayed.forward()
    monkeypatch.undo()
    assert done.batches == 0 and done.pulls == 1 and batches_waiting(relayed) == 1, done
    rnd = await relayed.village_round(st)  # the page answers the request left before the batch
    assert rnd.misdeeds == [] and relay_alert.current(st) is None, rnd
    await relayed.forward()
    rnd = await relayed.village_round(st)
    assert rnd.misdeeds == [] and relayed.hub_count(number) == 1 and st.pending_changes() == 0, rnd
