"""The node's push round (``PushRound`` in ``sync/session.py``): request limits, acks and failures,
rewinding on a gap, and a round against a hub that classifies (and is restored from a backup mid-round).
Batch classification at the hub is in ``test_session``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sync.session import (
    SETTLED,
    Ack,
    AckResult,
    Outgoing,
    PushRound,
    PushState,
    Verdict,
)

from .session_model import Batch, HubModel, chain, digest

# --- the push round ---------------------------------------------------------------------------


def outbox(sizes: list[int], *, epoch: int = 1, per_batch: int = 2, start: int = 1) -> list[Outgoing]:
    """Batches of ``per_batch`` seqs each, with the given byte sizes."""
    out = []
    for n, size in enumerate(sizes):
        first = start + n * per_batch
        out.append(Outgoing(epoch, first, first + per_batch - 1, digest("batch", epoch, first), size))
    return out


def acks(hashes: list[bytes], result: AckResult = AckResult.APPLIED, expected: int = 0) -> list[Ack]:
    return [Ack(h, result, expected) for h in hashes]


def run(round_: PushRound, answer: Callable[[list[bytes]], list[Ack]], limit: int = 1000) -> list[list[bytes]]:
    """Drive a round to its end; ``answer(request) -> list[Ack]``. Returns the requests made."""
    requests: list[list[bytes]] = []
    for _ in range(limit):
        req = round_.next_request()
        if req is None:
            return requests
        requests.append(req)
        round_.receive(answer(req))
    raise AssertionError("push round did not end")


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=5000), max_size=40),
    max_count=st.integers(min_value=1, max_value=8),
    max_bytes=st.integers(min_value=1, max_value=12000),
)
def test_requests_respect_count_and_byte_limits(sizes: list[int], max_count: int, max_bytes: int) -> None:
    pending = outbox(sizes)
    size_of = {b.batch_hash: b.size for b in pending}
    r = PushRound(pending, max_count=max_count, max_bytes=max_bytes)
    requests = run(r, acks)
    for req in requests:
        assert 1 <= len(req) <= max_count
        total = sum(size_of[h] for h in req)
        # A batch bigger than the limit still travels, alone: dropping it would leave a hole in the seqs.
        assert total <= max_bytes or len(req) == 1
    assert [h for req in requests for h in req] == [b.batch_hash for b in pending]
    assert r.state is PushState.DONE
    assert r.settled.keys() == size_of.keys()
    assert r.unsent == 0


def test_oversize_batch_travels_alone() -> None:
    pending = outbox([10, 500, 10, 10])
    r = PushRound(pending, max_count=10, max_bytes=100)
    assert run(r, acks) == [[pending[0].batch_hash], [pending[1].batch_hash], [b.batch_hash for b in pending[2:]]]


def test_default_limits_send_a_small_outbox_in_one_request() -> None:
    pending = outbox([1000] * 5)
    r = PushRound(pending)
    assert r.next_request() == [b.batch_hash for b in pending]


NON_GAP = [r for r in AckResult if r is not AckResult.GAP]


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=30),
    max_count=st.integers(min_value=1, max_value=5),
    data=st.data(),
)
def test_every_pending_batch_is_offered_whatever_the_answers(n: int, max_count: int, data: st.DataObject) -> None:
    pending = outbox([100] * n)
    answers = {b.batch_hash: data.draw(st.sampled_from(NON_GAP), label="ack") for b in pending}
    r = PushRound(pending, max_count=max_count)
    offered = [h for req in run(r, lambda req: [Ack(h, answers[h]) for h in req]) for h in req]
    assert offered == [b.batch_hash for b in pending]
    assert r.settled.keys() == {h for h, a in answers.items() if a in SETTLED}
    assert r.failed.keys() == {h for h, a in answers.items() if a not in SETTLED}
    assert all(r.settled[h].result is answers[h] for h in r.settled)
    assert r.unsent == n - len(r.settled)


def test_rejected_batch_does_not_stop_the_round() -> None:
    pending = outbox([10] * 4)
    hashes = [b.batch_hash for b in pending]
    r = PushRound(pending, max_count=1)
    assert r.next_request() == [hashes[0]]
    r.receive([Ack(hashes[0], AckResult.REJECTED, reason="bad_signature: test")])
    assert r.state is PushState.SENDING
    rest = run(r, acks)
    assert rest == [[h] for h in hashes[1:]]
    assert set(r.failed) == {hashes[0]}
    assert r.failed[hashes[0]].result is AckResult.REJECTED
    assert set(r.settled) == set(hashes[1:])
    assert r.unsent == 1


@pytest.mark.parametrize("result", [AckResult.APPLIED, AckResult.DUPLICATE, AckResult.QUARANTINED])
def test_settled_acks_are_recorded(result: AckResult) -> None:
    assert result in SETTLED
    pending = outbox([10, 10])
    r = PushRound(pending)
    req = r.next_request()
    assert req is not None
    r.receive([Ack(h, result, 5, reason="held" if result is AckResult.QUARANTINED else "") for h in req])
    assert set(r.settled) == set(req)
    assert all(a.result is result for a in r.settled.values())
    assert r.failed == {}
    assert r.unsent == 0


@pytest.mark.parametrize("result", [AckResult.FORK, AckResult.REJECTED, AckResult.GAP])
def test_unsettled_acks_are_failures(result: AckResult) -> None:
    pending = outbox([10])
    r = PushRound(pending)
    req = r.next_request()
    assert req is not None
    r.receive(acks(req, result, expected=99))  # 99 is in no pending batch: nothing to rewind to
    assert set(r.failed) == set(req)
    assert r.settled == {}
    assert r.unsent == 1
    assert r.next_request() is None


def test_a_later_settled_ack_clears_an_earlier_failure() -> None:
    pending = outbox([10])
    h = pending[0].batch_hash
    r = PushRound(pending)
    r.receive([Ack(h, AckResult.FORK)])
    r.receive([Ack(h, AckResult.APPLIED)])
    assert set(r.settled) == {h}
    assert r.failed == {}


def test_gap_rewinds_once_to_the_batch_holding_the_expected_seq() -> None:
    # Five batches of two seqs: 1-2, 3-4, 5-6, 7-8, 9-10.
    pending = outbox([10] * 5)
    b = [x.batch_hash for x in pending]
    r = PushRound(pending, max_count=2)
    assert r.next_request() == [b[0], b[1]]
    r.receive(acks([b[0], b[1]]))
    assert r.next_request() == [b[2], b[3]]
    # The hub was restored from a backup and lost 3-4: it expects seq 3 again.
    r.receive(acks([b[2], b[3]], AckResult.GAP, expected=3))
    assert r.next_request() == [b[1], b[2]]
    r.receive(acks([b[1], b[2]]))
    assert r.next_request() == [b[3], b[4]]
    # A second gap in the same round does not rewind again.
    r.receive(acks([b[3], b[4]], AckResult.GAP, expected=1))
    assert r.next_request() is None
    assert set(r.settled) == set(b[:3])
    assert set(r.failed) == {b[3], b[4]}


def test_gap_expecting_a_seq_inside_a_batch_rewinds_to_that_batch() -> None:
    pending = outbox([10] * 4, per_batch=3)  # 1-3, 4-6, 7-9, 10-12
    b = [x.batch_hash for x in pending]
    r = PushRound(pending, max_count=4)
    assert r.next_request() == b
    r.receive([Ack(b[0], AckResult.APPLIED), Ack(b[1], AckResult.APPLIED), *acks(b[2:], AckResult.GAP, expected=5)])
    assert r.next_request() == b[1:]


def test_gap_rewind_stays_within_the_gapped_batch_epoch() -> None:
    old = outbox([10, 10], epoch=1)  # epoch 1: 1-2, 3-4
    new = outbox([10, 10], epoch=2)  # epoch 2: 1-2, 3-4
    r = PushRound(old + new, max_count=1)
    for _ in range(3):
        req = r.next_request()
        assert req is not None
        r.receive(acks(req))
    assert r.next_request() == [new[1].batch_hash]
    r.receive(acks([new[1].batch_hash], AckResult.GAP, expected=1))
    assert r.next_request() == [new[0].batch_hash]  # not epoch 1's 1-2


def test_gap_naming_a_seq_the_node_no_longer_holds_ends_the_round() -> None:
    pending = outbox([10, 10], start=11)  # 11-12, 13-14: 1-10 left the outbox long ago
    r = PushRound(pending)
    req = r.next_request()
    assert req is not None
    r.receive(acks(req, AckResult.GAP, expected=1))
    assert r.next_request() is None
    assert set(r.failed) == set(req)


def test_gap_for_a_batch_the_round_does_not_hold_rewinds_nothing() -> None:
    pending = outbox([10, 10])
    r = PushRound(pending)
    assert r.next_request() is not None
    r.receive([Ack(digest("not ours"), AckResult.GAP, expected_seq=1)])
    assert r.next_request() is None


def test_round_end_is_sticky() -> None:
    pending = outbox([10, 10])
    r = PushRound(pending)
    run(r, acks)
    assert r.state is PushState.DONE
    for _ in range(3):
        assert r.next_request() is None
    r.receive(acks([pending[0].batch_hash], AckResult.DUPLICATE))  # a late ack changes nothing
    assert r.next_request() is None


def test_empty_outbox_ends_at_once() -> None:
    r = PushRound([])
    assert r.next_request() is None
    assert r.next_request() is None
    assert r.state is PushState.DONE
    assert r.unsent == 0


# --- the push round against a hub that uses classify ------------------------------------------


@dataclass
class Hub:
    """A hub holding one origin's chain, answering a request the way hub/ingest does."""

    chain: dict[bytes, Batch]
    model: HubModel = field(default_factory=HubModel)

    def answer(self, request: list[bytes]) -> list[Ack]:
        out = []
        for h in request:
            b = self.chain[h]
            d = self.model.offer(b)
            result = {
                Verdict.APPLY: AckResult.APPLIED,
                Verdict.DUPLICATE: AckResult.DUPLICATE,
                Verdict.GAP: AckResult.GAP,
                Verdict.FORK: AckResult.FORK,
            }[d.verdict]
            out.append(Ack(h, result, b.last + 1 if d.verdict is Verdict.APPLY else d.expected_seq, d.reason))
        return out

    def restore(self, keep: int, batches: list[Batch]) -> None:
        """Roll back to a backup holding only the first ``keep`` batches."""
        self.model = HubModel()
        for b in batches[:keep]:
            self.model.offer(b)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=4), min_size=2, max_size=15),
    max_count=st.integers(min_value=1, max_value=3),
    data=st.data(),
)
def test_round_recovers_from_a_hub_restored_mid_round(sizes: list[int], max_count: int, data: st.DataObject) -> None:
    batches = chain(sizes)
    pending = [Outgoing(1, b.first, b.last, b.hash, 100) for b in batches]
    hub = Hub({b.hash: b for b in batches})
    hub.restore(data.draw(st.integers(0, len(batches)), label="batches the hub already holds"), batches)
    requests = -(-len(batches) // max_count)
    restore_after = data.draw(st.integers(1, max(1, requests - 1)), label="restore after this many requests")

    r = PushRound(pending, max_count=max_count)
    offered: list[bytes] = []
    for n in range(1000):
        if n == restore_after and len(offered) < len(batches):
            # A backup holds a prefix of what the hub had. (A loss after the round's last request
            # cannot be noticed until the next round, so the restore happens before one.)
            hub.restore(data.draw(st.integers(0, len(hub.model.applied)), label="backup holds"), batches)
        req = r.next_request()
        if req is None:
            break
        offered += req
        answers = hub.answer(req)
        if any(a.result is AckResult.GAP for a in answers):
            event("hub answered a gap")
        r.receive(answers)
    else:
        raise AssertionError("push round did not end")

    assert set(offered) == {b.hash for b in batches}
    assert hub.model.applied == {(b.first, b.last): b.hash for b in batches}
    assert all(n == 1 for n in hub.model.applies.values())
    assert set(r.settled) == {b.hash for b in batches}
    assert r.failed == {}
    assert r.unsent == 0
