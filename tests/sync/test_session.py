"""Batch classification at the hub (``classify`` in ``sync/session.py``): one case per verdict, then
honest, forked and restored traffic in any order, with duplicates. The node's push round is in
``test_push_round``."""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sync.session import Cursor, Decision, Verdict

from .session_model import ZERO, Batch, HubModel, chain, decide, digest

# --- classify: one case per verdict -----------------------------------------------------------

CHAIN = chain([5, 3, 4])  # seqs 1-5, 6-8, 9-12
B1, B2, B3 = CHAIN
AFTER_B1 = Cursor(6, B1.hash)
APPLIED_B1 = {(1, 5): B1.hash}


def test_first_batch_of_an_epoch_applies_on_a_fresh_cursor() -> None:
    d = decide(Cursor(), B1, {})
    assert d == Decision(Verdict.APPLY, 1)


def test_batch_at_the_expected_seq_that_chains_applies() -> None:
    assert decide(AFTER_B1, B2, APPLIED_B1) == Decision(Verdict.APPLY, 6)


def test_batch_at_the_expected_seq_that_does_not_chain_is_a_fork() -> None:
    other = Batch(6, 8, digest("someone else"), digest("clone", 6, 8))
    d = decide(AFTER_B1, other, APPLIED_B1)
    assert d.verdict is Verdict.FORK
    assert d.expected_seq == 6
    assert "chain" in d.reason


def test_first_batch_claiming_a_predecessor_is_a_fork() -> None:
    d = decide(Cursor(), Batch(1, 5, digest("phantom"), digest("x")), {})
    assert d.verdict is Verdict.FORK


@pytest.mark.parametrize("prev", [B2.hash, ZERO, digest("anything")])
def test_batch_past_the_expected_seq_is_a_gap_naming_the_expected_seq(prev: bytes) -> None:
    d = decide(AFTER_B1, Batch(B3.first, B3.last, prev, B3.hash), APPLIED_B1)
    assert d.verdict is Verdict.GAP
    assert d.expected_seq == 6
    assert "6" in d.reason


def test_gap_on_a_fresh_cursor_expects_seq_one() -> None:
    d = decide(Cursor(), B2, {})
    assert (d.verdict, d.expected_seq) == (Verdict.GAP, 1)


def test_identical_batch_already_applied_is_a_duplicate() -> None:
    applied = {(1, 5): B1.hash, (6, 8): B2.hash}
    cursor = Cursor(9, B2.hash)
    assert decide(cursor, B1, applied) == Decision(Verdict.DUPLICATE, 9)
    assert decide(cursor, B2, applied) == Decision(Verdict.DUPLICATE, 9)


def test_same_range_different_hash_is_a_fork() -> None:
    impostor = Batch(1, 5, ZERO, digest("clone", 1, 5))
    d = decide(AFTER_B1, impostor, APPLIED_B1)
    assert d.verdict is Verdict.FORK
    assert d.expected_seq == 6
    assert "different content" in d.reason


def test_partially_overlapping_range_is_a_fork() -> None:
    # Seqs 4-8: 4 and 5 are held from B1, 6-8 are new. Not a duplicate, not a gap.
    d = decide(AFTER_B1, Batch(4, 8, ZERO, digest("recut", 4, 8)), APPLIED_B1)
    assert d.verdict is Verdict.FORK
    assert "overlap" in d.reason


def test_range_inside_an_applied_batch_is_a_fork() -> None:
    d = decide(AFTER_B1, Batch(2, 3, ZERO, digest("recut", 2, 3)), APPLIED_B1)
    assert d.verdict is Verdict.FORK


def test_duplicate_hash_under_another_range_is_not_a_duplicate() -> None:
    # A duplicate is the very (range, hash) pair: the hash alone under a different range is not one.
    d = decide(Cursor(9, B2.hash), Batch(1, 4, ZERO, B1.hash), APPLIED_B1 | {(6, 8): B2.hash})
    assert d.verdict is Verdict.FORK


# --- classify: honest traffic, in any order, with duplicates ----------------------------------

sizes_st = st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(sizes=sizes_st, data=st.data())
def test_honest_traffic_in_any_order_applies_every_batch_exactly_once(sizes: list[int], data: st.DataObject) -> None:
    batches = chain(sizes)
    hub = HubModel()
    outstanding = list(range(len(batches)))  # every batch is delivered at least once
    rounds = 0
    while outstanding:
        rounds += 1
        assert rounds <= len(batches), "each round must apply at least the batch the hub expects"
        order = data.draw(st.permutations(outstanding), label="order")
        dups = data.draw(st.lists(st.sampled_from(range(len(batches))), max_size=len(batches)), label="dups")
        delivery = list(order)
        for i in dups:
            delivery.insert(data.draw(st.integers(0, len(delivery)), label="dup position"), i)
        gapped: list[int] = []
        for i in delivery:
            b = batches[i]
            held = (b.first, b.last) in hub.applied
            expected = hub.cursor.next_seq
            d = hub.offer(b)
            assert d.verdict is not Verdict.FORK, f"honest batch {b.first}-{b.last} reported as a fork: {d.reason}"
            assert d.expected_seq == expected
            if held:
                assert d.verdict is Verdict.DUPLICATE
            elif b.first == expected:
                assert d.verdict is Verdict.APPLY
            else:
                assert d.verdict is Verdict.GAP
                assert b.first > expected
                gapped.append(i)
        # The node rewinds and re-sends whatever the hub did not take (deduplicated, any order).
        event(f"gapped batches re-sent: {bool(gapped)}")
        outstanding = sorted({i for i in gapped if (batches[i].first, batches[i].last) not in hub.applied})

    assert hub.applies == {b.hash: 1 for b in batches}
    assert hub.applied == {(b.first, b.last): b.hash for b in batches}
    assert hub.cursor == Cursor(batches[-1].last + 1, batches[-1].hash)


@settings(max_examples=200, deadline=None)
@given(
    honest_sizes=sizes_st,
    forked_sizes=sizes_st,
    data=st.data(),
)
def test_forked_origin_is_always_reported_as_a_fork(
    honest_sizes: list[int], forked_sizes: list[int], data: st.DataObject
) -> None:
    """A cloned or restored station re-uses seqs the hub holds, with other content."""
    honest = chain(honest_sizes)
    hub = HubModel()
    held = data.draw(st.integers(min_value=1, max_value=len(honest)), label="batches the hub holds")
    for b in honest[:held]:
        assert hub.offer(b).verdict is Verdict.APPLY
    before = (hub.cursor, dict(hub.applied))
    expected = hub.cursor.next_seq

    forked = chain(forked_sizes, salt="clone")
    for b in data.draw(st.permutations(forked), label="fork delivery"):
        d = hub.offer(b)
        assert d.expected_seq == expected
        if b.first > expected:
            assert d.verdict is Verdict.GAP  # nothing held there yet: nothing to contradict
        else:
            assert d.verdict is Verdict.FORK, f"forked {b.first}-{b.last} got {d.verdict}"
        assert (hub.cursor, hub.applied) == before, "a fork or a gap must change nothing"


@settings(max_examples=200, deadline=None)
@given(sizes=sizes_st, data=st.data())
def test_same_cut_different_content_is_a_fork_for_every_batch(sizes: list[int], data: st.DataObject) -> None:
    honest = chain(sizes)
    hub = HubModel()
    for b in honest:
        hub.offer(b)
    for b in data.draw(st.permutations(chain(sizes, salt="restored from backup")), label="order"):
        assert hub.offer(b).verdict is Verdict.FORK
