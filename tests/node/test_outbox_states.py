"""The station runs sync/outbox.py's table: a batch superseded by a fork's re-issue stays superseded
whatever answer for it comes again (a duplicated response, an acks file carried back by hand)."""

from __future__ import annotations

from collections.abc import Callable

from node import uplink
from node.station import Station
from protocol.document import sign_document
from sync.outbox import BatchState
from tests.conftest import World

DISTRICT_ITEM = "360802-0004"


def _answer(world: World, st: Station, batch: bytes, result: str) -> bytes:
    ack = {"batch": batch, "result": result, "expected": 1, "reason": "test"}
    return sign_document(
        "acks", {"acks": [ack]}, signer=world.hub.hub_id, recipient=st.code, signing_key=world.hub.keys.sign
    )


def _states(st: Station) -> list[str]:
    return [str(r[0]) for r in st.conn.execute("SELECT state FROM outbox ORDER BY epoch, first_seq")]


def test_answers_for_a_superseded_batch_leave_it_out_of_the_queue(make_world: Callable[..., World]) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    world.accept(v1, DISTRICT_ITEM)
    uplink.build_outbox(v1)
    forked = bytes(v1.conn.execute("SELECT hash FROM outbox").fetchone()[0])

    uplink.read_acks(v1, _answer(world, v1, forked, "fork"))  # re-issued under epoch 2
    assert v1.meta.int("epoch") == 2
    assert _states(v1) == [BatchState.SUPERSEDED]
    uplink.build_outbox(v1)
    assert _states(v1) == [BatchState.SUPERSEDED, BatchState.PENDING]
    pending = v1.pending_changes()

    for again in ("fork", "rejected", "fork"):
        uplink.read_acks(v1, _answer(world, v1, forked, again))
        assert _states(v1) == [BatchState.SUPERSEDED, BatchState.PENDING], again
    uplink.mark_refused(v1, [forked], "HTTP 500")
    assert _states(v1) == [BatchState.SUPERSEDED, BatchState.PENDING]
    assert v1.meta.int("epoch") == 2 and v1.pending_changes() == pending
    assert [o.epoch for o, _ in uplink.unsettled(v1)] == [2]


def test_a_gap_sends_again_only_what_the_hub_held(make_world: Callable[..., World]) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    for _ in range(2):
        world.accept(v1, DISTRICT_ITEM)
        world.push(v1)
    world.accept(v1, DISTRICT_ITEM)
    uplink.build_outbox(v1)
    assert _states(v1) == [BatchState.RECEIPTED, BatchState.RECEIPTED, BatchState.PENDING]
    last = bytes(v1.conn.execute("SELECT hash FROM outbox ORDER BY first_seq DESC").fetchone()[0])
    uplink.read_acks(v1, _answer(world, v1, last, "gap"))  # the hub (restored) expects seq 1 again
    assert _states(v1) == [BatchState.PENDING] * 3
