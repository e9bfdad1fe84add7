"""The relay's quota (issue 17, the simulator's seed 79 and its backlog stress):

- the hub's answers waiting at the relay for a village are handed over on any contact, a pull too, so
  a village with nothing left to push still collects its receipts, and they count against the total
  only: answers it has not collected never block what it sends;
- a push is taken as far as the village's quota has room, in order, and the rest is refused with
  ``relay_full``: the village keeps it unsettled and offers it again, so a big backlog drains through
  the relay round by round, each batch at the hub once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from node import relay_cargo, relay_queue, usb_files
from node.relay_queue import RelayQueue, now_ms, outer
from protocol.codec import pack, unpack
from tests.conftest import World
from tests.node.test_relay import V1, Relayed, pending, relay_world


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


def waiting_down(r: Relayed, kind: str) -> int:
    with r.queue() as conn:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM relay_frames WHERE village=? AND direction='down' AND kind=?", (V1, kind)
            ).fetchone()[0]
        )


async def stale_receipts(r: Relayed) -> int:
    """The village's batch went through the relay and the hub answered it there; then the village
    settled it by its own line (the hub's acks for the duplicate), so it has nothing left to push, and
    the acks at the relay are stale. Returns their size."""
    r.accept(r.v1)
    await r.village_round(r.v1)
    done = await r.forward()
    assert done.batches == 1 and done.errors == [], done
    r.world.push(r.v1)  # its own line, for a while
    assert pending(r.v1) == 0 and waiting_down(r, "acks") == 1
    with r.queue() as conn:
        return int(conn.execute("SELECT size FROM relay_frames WHERE direction='down' AND kind='acks'").fetchone()[0])


async def test_a_village_with_nothing_to_push_collects_its_receipts_on_a_pull(relayed: Relayed) -> None:
    await stale_receipts(relayed)
    rnd = await relayed.village_round(relayed.v1)
    assert rnd.queued == 0 and rnd.problems == [] and rnd.misdeeds == []
    assert waiting_down(relayed, "acks") == 0  # handed over with the page: the relay holds them no longer
    summary = relay_queue.summary_of(relayed.township.folder, relayed.township.code, now_ms())
    assert [(q["up"], q["down"]) for q in summary] == [(1, 0)], summary  # only its new pull request


async def test_answers_waiting_down_never_block_the_villages_pull_request(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = await stale_receipts(relayed)
    # Its quota smaller than what waits for it: counted against it, the answers would refuse its request.
    monkeypatch.setattr(relay_queue, "VILLAGE_QUOTA_BYTES", size - 1)
    rnd = await relayed.village_round(relayed.v1)
    assert rnd.problems == [] and waiting_down(relayed, "acks") == 0
    with relayed.queue() as conn:
        assert conn.execute("SELECT COUNT(*) FROM relay_frames WHERE direction='up' AND kind='pull'").fetchone()[0] == 1


def test_answers_waiting_for_a_stick_never_block_what_the_village_sends(relayed: Relayed) -> None:
    """A village by stick: what the hub sent back waits for ``node export T --for``; its next cargo is
    taken all the same, and the total still caps everything."""
    relayed.accept(relayed.v1)
    frames = relayed.world.frames(relayed.v1)
    queue = RelayQueue(relayed.township.folder, relayed.township.code)
    try:
        big = b"x" * 4096
        queue.answered(V1, [], "feed", big, now_ms())
        sizes = sum(outer(f).size for f in frames)
        real = (relay_queue.VILLAGE_QUOTA_BYTES, relay_queue.TOTAL_QUOTA_BYTES)
        relay_queue.VILLAGE_QUOTA_BYTES = sizes  # room for its batches, not for them and the page
        try:
            offered = queue.offer_up(frames, now_ms(), hand_over=False)
            assert offered.taken == len(frames) and offered.refusal is None and offered.answers == []
            relay_queue.TOTAL_QUOTA_BYTES = sizes + len(big)  # the total is full now: nothing more
            relayed.accept(relayed.v1)
            more = relayed.world.frames(relayed.v1)[len(frames) :]
            refused = queue.offer_up(more, now_ms(), hand_over=False)
            assert refused.taken == 0 and refused.refusal is not None and refused.refusal.code == "relay_full"
        finally:
            relay_queue.VILLAGE_QUOTA_BYTES, relay_queue.TOTAL_QUOTA_BYTES = real
        assert [k for _, k, _ in queue.waiting_down(V1)] == ["feed"]  # still there for the stick
    finally:
        queue.close()


def three_batches(r: Relayed) -> tuple[list[str], list[bytes]]:
    numbers = []
    for _ in range(3):
        numbers.append(r.accept(r.v1))
        frames = r.world.frames(r.v1)  # one batch per call
    assert len(frames) == 3
    return numbers, frames


async def test_a_push_over_the_quota_is_taken_as_far_as_it_fits_and_the_rest_comes_later(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers, frames = three_batches(relayed)
    sizes = [outer(f).size for f in frames]
    monkeypatch.setattr(relay_queue, "VILLAGE_QUOTA_BYTES", sizes[0] + sizes[1])

    first = await relayed.village_round(relayed.v1)
    assert first.queued == 2 and first.misdeeds == []
    assert any("乡镇转发队列已满" in p and "1 批留在本村" in p for p in first.problems), first.problems
    with relayed.queue() as conn:
        held = [int(r[0]) for r in conn.execute("SELECT first_seq FROM relay_frames WHERE kind='batch' ORDER BY id")]
    assert held == [outer(f).first_seq for f in frames[:2]]  # the leading two, never a later one alone
    left = relayed.v1.meta.get("relay_left")
    assert isinstance(left, dict) and len(left) == 2  # the withheld clock runs only for what it took

    await relayed.forward()  # forwarded: their bytes no longer count, the third fits
    second = await relayed.village_round(relayed.v1)
    assert second.queued == 3 and second.problems == [], second.problems  # two held already, one new
    await relayed.forward()
    third = await relayed.village_round(relayed.v1)
    assert third.problems == [] and pending(relayed.v1) == 0
    assert [relayed.hub_count(n) for n in numbers] == [1, 1, 1]  # each once: nothing lost, nothing twice


async def test_the_relay_answers_a_partial_push_with_a_stable_code_and_the_acks(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, frames = three_batches(relayed)
    monkeypatch.setattr(relay_queue, "VILLAGE_QUOTA_BYTES", outer(frames[0]).size)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{relayed.relay_url}/v1/sync/push", data=pack(frames)) as resp,
    ):
        assert resp.status == 200
        doc = unpack(await resp.read())
    assert doc["queued"] == 1 and doc["acks"] == [] and doc["refused"]["error"] == "relay_full"
    assert "其余 2 批未收下" in doc["refused"]["message"]


def test_stick_cargo_over_the_quota_is_taken_in_chain_order_and_the_rest_refused(
    relayed: Relayed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, frames = three_batches(relayed)
    stick = tmp_path / "stick"
    usb_files.export(relayed.v1, stick)
    monkeypatch.setattr(relay_queue, "VILLAGE_QUOTA_BYTES", outer(frames[0]).size + outer(frames[1]).size)
    _, taken = relay_cargo.split_cargo(relayed.township, sorted(stick.iterdir(), reverse=True))
    batches = [t for t in taken if t.get("kind") == "batch"]
    refused = [t for t in taken if "refused" in t]
    assert len(batches) == 2 and len(refused) == 1 and "乡镇转发队列已满" in refused[0]["refused"]
    with relayed.queue() as conn:
        held = [int(r[0]) for r in conn.execute("SELECT first_seq FROM relay_frames WHERE kind='batch' ORDER BY id")]
    assert held == [outer(f).first_seq for f in frames[:2]]
