"""The workflow table: every pair is either in the table or refused, and the table has the shape the
merge relies on (stages never go backwards, final statuses only close, terminal ones end)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.workflow import (
    FINAL,
    IMMEDIATE_ONLY,
    MOVE_ACTORS,
    STATUS_LABELS,
    TERMINAL,
    TRANSITIONS,
    Move,
    Status,
    TransitionError,
    allowed_moves,
    may_move,
    move_to,
    next_status,
    stage,
)


@given(st.sampled_from(Status), st.sampled_from(Move), st.booleans())
def test_every_pair_is_the_tables_answer_or_a_transition_error(current: Status, move: Move, immediate: bool) -> None:
    in_table = (current, move) in TRANSITIONS and (immediate or (current, move) not in IMMEDIATE_ONLY)
    try:
        result = next_status(current, move, immediate=immediate)
    except TransitionError as e:
        assert not in_table
        assert e.current == current and e.move == move
        assert str(e)  # a reason for staff, never an empty line
    else:
        assert in_table
        assert result == TRANSITIONS[(current, move)]


@pytest.mark.parametrize("immediate", [True, False])
@pytest.mark.parametrize("status", sorted(TERMINAL - {Status.COMPLETED}))
def test_terminal_statuses_have_no_way_out(status: Status, immediate: bool) -> None:
    assert allowed_moves(status, immediate=immediate) == ()
    for move in Move:
        with pytest.raises(TransitionError) as info:
            next_status(status, move, immediate=immediate)
        assert info.value.code == "terminal"


@pytest.mark.parametrize("immediate", [True, False])
def test_a_completed_file_can_only_be_delivered(immediate: bool) -> None:
    assert allowed_moves(Status.COMPLETED, immediate=immediate) == (Move.DELIVER,)


def test_final_statuses_only_close_or_deliver() -> None:
    for (current, move), target in TRANSITIONS.items():
        if current in FINAL:
            assert move in {Move.COMPLETE, Move.DELIVER}
            assert target in FINAL
    assert TERMINAL <= FINAL
    assert {s for s in Status if stage(s) >= 3} == FINAL


def test_stages_are_the_merge_order() -> None:
    assert [stage(s) for s in Status] == [0, 0, 1, 2, 3, 3, 4, 4, 4, 5]
    # Every terminal status outranks every non-terminal one: a closed file is never reopened by a merge.
    assert min(stage(s) for s in TERMINAL) > max(stage(s) for s in Status if s not in TERMINAL)
    for (current, move), target in TRANSITIONS.items():
        if move in {Move.SUPPLEMENT, Move.RESUBMIT}:
            assert stage(target) == stage(current)  # the back-and-forth of 补正
        else:
            assert stage(target) > stage(current), (current, move)


def test_each_status_reaches_each_target_by_one_move_at_most() -> None:
    seen: set[tuple[Status, Status]] = set()
    for (current, _), target in TRANSITIONS.items():
        assert (current, target) not in seen
        seen.add((current, target))


@pytest.mark.parametrize(("pair", "target"), list(TRANSITIONS.items()))
def test_move_to_finds_the_tables_move(pair: tuple[Status, Move], target: Status) -> None:
    current, move = pair
    assert move_to(current, target, immediate=True) == move
    if pair not in IMMEDIATE_ONLY:
        assert move_to(current, target, immediate=False) == move


def test_move_to_refuses_unreachable_targets() -> None:
    with pytest.raises(TransitionError, match="办件已办结，不能变更为「撤回」"):
        move_to(Status.COMPLETED, Status.WITHDRAWN, immediate=False)
    with pytest.raises(TransitionError, match="already"):
        move_to(Status.UNDER_REVIEW, Status.UNDER_REVIEW, immediate=False)
    with pytest.raises(TransitionError) as info:
        move_to(Status.ACCEPTED, Status.COMPLETED, immediate=False)
    assert info.value.code == "immediate_only"


def test_the_two_paths_through_the_workflow() -> None:
    path = [Move.REVIEW, Move.INSPECT, Move.APPROVE, Move.COMPLETE, Move.DELIVER]
    status = Status.ACCEPTED
    for move in [Move.SUPPLEMENT, Move.RESUBMIT, *path]:
        status = next_status(status, move, immediate=False)
    assert status == Status.DELIVERED
    quick = next_status(Status.ACCEPTED, Move.COMPLETE, immediate=True)
    assert next_status(quick, Move.DELIVER, immediate=True) == Status.DELIVERED


def test_every_status_is_reachable_from_accepted() -> None:
    reached = {Status.ACCEPTED}
    frontier = [Status.ACCEPTED]
    while frontier:
        current = frontier.pop()
        for move in allowed_moves(current, immediate=False):
            target = next_status(current, move, immediate=False)
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Status)


def test_refusals_say_why_in_chinese_and_english() -> None:
    with pytest.raises(TransitionError, match="办件已办结，不能撤回") as info:
        next_status(Status.COMPLETED, Move.WITHDRAW, immediate=False)
    assert "cannot withdraw" in str(info.value)
    assert info.value.code in ("not_allowed", "terminal")
    assert isinstance(info.value, ValueError)


def test_plain_strings_are_accepted_as_statuses_and_moves() -> None:
    assert next_status("accepted", "review", immediate=False) == Status.UNDER_REVIEW  # type: ignore[arg-type]
    assert move_to("under_review", "inspecting", immediate=False) == Move.INSPECT  # type: ignore[arg-type]


def test_labels() -> None:
    assert STATUS_LABELS == {
        Status.ACCEPTED: "受理",
        Status.SUPPLEMENT_REQUESTED: "补正",
        Status.UNDER_REVIEW: "审查",
        Status.INSPECTING: "踏勘",
        Status.APPROVED: "准予",
        Status.DENIED: "不予许可",
        Status.NOT_ACCEPTED: "不予受理",
        Status.WITHDRAWN: "撤回",
        Status.COMPLETED: "办结",
        Status.DELIVERED: "送达",
    }


def test_who_may_move() -> None:
    assert all("hub" in roles for roles in MOVE_ACTORS.values())
    assert set(MOVE_ACTORS) == set(Move)
    station = {m for m, roles in MOVE_ACTORS.items() if "station" in roles}
    decider = {m for m, roles in MOVE_ACTORS.items() if "decider" in roles}
    assert station == {
        Move.SUPPLEMENT,
        Move.RESUBMIT,
        Move.REJECT,
        Move.WITHDRAW,
        Move.DELIVER,
        Move.COMPLETE,
    }
    assert decider == {
        Move.REVIEW,
        Move.INSPECT,
        Move.APPROVE,
        Move.DENY,
        Move.COMPLETE,
        Move.SUPPLEMENT,
        Move.REJECT,
    }
    assert may_move("station", Move.COMPLETE, immediate=True)
    assert not may_move("station", Move.COMPLETE, immediate=False)
    assert may_move("decider", Move.COMPLETE, immediate=False)
    assert not may_move("station", Move.APPROVE, immediate=True)
    assert not may_move("field", Move.DELIVER, immediate=True)
    for move in Move:
        assert may_move("hub", move, immediate=False)
