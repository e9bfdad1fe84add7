"""The outbox's transition table (sync/outbox.py): total, with stable codes, and the rules it exists for."""

from __future__ import annotations

import pytest

from sync.outbox import EVENT_OF, HELD, TRANSITIONS, UNSETTLED, Action, BatchState, Event, Step, moved_by, step
from sync.session import SETTLED, AckResult

B, E = BatchState, Event


def test_the_table_is_total_and_every_ack_result_has_an_event() -> None:
    assert set(TRANSITIONS) == {(s, e) for s in BatchState for e in Event}
    assert set(EVENT_OF) == set(AckResult)


def test_state_codes_are_the_words_the_outbox_column_has_always_held() -> None:
    # Stored in every station's database: changing one is a migration, not a rename.
    assert [s.value for s in BatchState] == ["pending", "receipted", "quarantined", "rejected", "superseded"]
    assert {B.PENDING, B.REJECTED} == UNSETTLED
    assert {B.RECEIPTED, B.QUARANTINED} == HELD


@pytest.mark.parametrize("state", list(BatchState))
@pytest.mark.parametrize("result", sorted(SETTLED, key=lambda r: r.value))
def test_a_settling_ack_settles_any_batch_and_keeps_the_receipt(state: BatchState, result: AckResult) -> None:
    s = step(state, EVENT_OF[result])
    assert s.state in HELD and s.action is Action.KEEP_RECEIPT
    assert (s.state is B.QUARANTINED) == (result is AckResult.QUARANTINED)


def test_a_gap_requeues_held_batches_only() -> None:
    assert all(step(s, E.GAP) == Step(s, Action.REQUEUE) for s in BatchState if s is not B.SUPERSEDED)
    assert moved_by(E.RESEND) == HELD
    assert all(step(s, E.RESEND).state is B.PENDING for s in HELD)


def test_a_superseded_batch_never_goes_back_in_the_queue() -> None:
    """A second copy of a fork (or a refusal) answer must not offer it again, answered the same forever."""
    for e in (E.FORK, E.REJECTED, E.REFUSED, E.GAP, E.RESEND, E.REISSUED):
        assert step(B.SUPERSEDED, e).state is B.SUPERSEDED
        assert step(B.SUPERSEDED, e).state not in UNSETTLED


def test_a_fork_rejects_and_reissues_and_the_reissue_supersedes_all_but_receipted() -> None:
    for s in (B.PENDING, B.REJECTED, B.RECEIPTED, B.QUARANTINED):
        assert step(s, E.FORK).state is B.REJECTED and step(s, E.FORK).action is Action.REISSUE
    assert moved_by(E.REISSUED) == {B.PENDING, B.REJECTED, B.QUARANTINED}


def test_refusals_keep_the_batch_offered_with_the_hubs_reason() -> None:
    for e in (E.REJECTED, E.REFUSED):
        for s in (B.PENDING, B.REJECTED):
            assert step(s, e).state is B.REJECTED and step(s, e).note
