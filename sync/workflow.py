"""The application workflow (办件流程): one transition table and the few rules around it.

Theory of operation
-------------------
An application is always in exactly one ``Status``. Staff change it by making a ``Move`` (a verb:
review, approve, deliver...). ``TRANSITIONS`` maps each allowed ``(status, move)`` pair to the
status it leads to; a pair missing from the table is not allowed, whoever asks. There is no other
place where the workflow is written down: the CLI's ``--to STATUS`` is turned into a move with
``move_to``, the UI lists ``allowed_moves``, and the tests walk the table itself.

One pair is conditional: completing straight from ``accepted`` is only for immediate items
(即办件), which are decided at the window; ``IMMEDIATE_ONLY`` lists it, and every function takes the
``immediate`` flag so the caller cannot forget it.

The table says *what* may happen. ``MOVE_ACTORS`` says *who* may make each move, in roles rather
than station codes: the accepting ``station``, the ``decider`` (the tier that decides the item,
whose staff review and decide it) and the ``hub``, which may do anything (the district hall
steps in for stations that are offline or closed).

Replicas can make moves concurrently while offline, so the fold in ``sync/fold.py`` cannot replay
them in order; it orders statuses with ``stage`` instead. A later stage wins over an earlier one, so
progress is never undone by a stale write, and ``TERMINAL`` statuses are never overwritten.
"""

from __future__ import annotations

from enum import StrEnum

from protocol.errors import SanjiError


class Status(StrEnum):
    ACCEPTED = "accepted"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    UNDER_REVIEW = "under_review"
    INSPECTING = "inspecting"
    APPROVED = "approved"
    DENIED = "denied"
    NOT_ACCEPTED = "not_accepted"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"
    DELIVERED = "delivered"


class Move(StrEnum):
    SUPPLEMENT = "supplement"
    RESUBMIT = "resubmit"
    REVIEW = "review"
    INSPECT = "inspect"
    APPROVE = "approve"
    DENY = "deny"
    COMPLETE = "complete"
    DELIVER = "deliver"
    REJECT = "reject"
    WITHDRAW = "withdraw"


S = Status
M = Move

TRANSITIONS: dict[tuple[Status, Move], Status] = {
    # At the window: ask for missing materials, refuse (不予受理), or pass on for review.
    (S.ACCEPTED, M.SUPPLEMENT): S.SUPPLEMENT_REQUESTED,
    (S.ACCEPTED, M.REVIEW): S.UNDER_REVIEW,
    (S.ACCEPTED, M.COMPLETE): S.COMPLETED,  # immediate items only, see IMMEDIATE_ONLY
    (S.ACCEPTED, M.REJECT): S.NOT_ACCEPTED,
    (S.ACCEPTED, M.WITHDRAW): S.WITHDRAWN,
    (S.SUPPLEMENT_REQUESTED, M.RESUBMIT): S.ACCEPTED,
    (S.SUPPLEMENT_REQUESTED, M.REJECT): S.NOT_ACCEPTED,
    (S.SUPPLEMENT_REQUESTED, M.WITHDRAW): S.WITHDRAWN,
    # Review and on-site inspection (踏勘) end in a decision.
    (S.UNDER_REVIEW, M.INSPECT): S.INSPECTING,
    (S.UNDER_REVIEW, M.APPROVE): S.APPROVED,
    (S.UNDER_REVIEW, M.DENY): S.DENIED,
    (S.UNDER_REVIEW, M.WITHDRAW): S.WITHDRAWN,
    (S.INSPECTING, M.APPROVE): S.APPROVED,
    (S.INSPECTING, M.DENY): S.DENIED,
    (S.INSPECTING, M.WITHDRAW): S.WITHDRAWN,
    # After the decision only closing the file and handing over the result remain.
    (S.APPROVED, M.COMPLETE): S.COMPLETED,
    (S.DENIED, M.COMPLETE): S.COMPLETED,
    (S.COMPLETED, M.DELIVER): S.DELIVERED,
}

IMMEDIATE_ONLY: frozenset[tuple[Status, Move]] = frozenset({(S.ACCEPTED, M.COMPLETE)})

# The file is closed (办结 in the broad sense): refused, withdrawn, or completed. Only delivery of the
# result may still follow completion. The merge never lets a non-terminal status overwrite these.
TERMINAL: frozenset[Status] = frozenset({S.NOT_ACCEPTED, S.WITHDRAWN, S.COMPLETED, S.DELIVERED})

# The outcome is fixed: from here on only completion (办结) and delivery (送达) may follow, so the
# application can no longer be withdrawn, sent back for supplement or re-decided. It is every status
# from the decision on (stage >= 3), terminal ones included; TERMINAL is a subset.
FINAL: frozenset[Status] = frozenset({S.APPROVED, S.DENIED, S.COMPLETED, S.DELIVERED, S.NOT_ACCEPTED, S.WITHDRAWN})

# Progress order for the merge. Equal stages are alternatives or back-and-forth (补正 ↔ 受理;
# approve vs deny; refuse vs withdraw vs complete), which the fold settles by the author's authority
# and then the clock. Every terminal status sits above every non-terminal one, so a stale write can
# never reopen a closed file, and two different closings resolve by authority (DESIGN.md).
STAGE: dict[Status, int] = {
    S.ACCEPTED: 0,
    S.SUPPLEMENT_REQUESTED: 0,
    S.UNDER_REVIEW: 1,
    S.INSPECTING: 2,
    S.APPROVED: 3,
    S.DENIED: 3,
    S.NOT_ACCEPTED: 4,
    S.WITHDRAWN: 4,
    S.COMPLETED: 4,
    S.DELIVERED: 5,
}

STATUS_LABELS: dict[Status, str] = {
    S.ACCEPTED: "受理",
    S.SUPPLEMENT_REQUESTED: "补正",
    S.UNDER_REVIEW: "审查",
    S.INSPECTING: "踏勘",
    S.APPROVED: "准予",
    S.DENIED: "不予许可",
    S.NOT_ACCEPTED: "不予受理",
    S.WITHDRAWN: "撤回",
    S.COMPLETED: "办结",
    S.DELIVERED: "送达",
}

# How staff would say "do this": used in refusals ("办件已办结，不能撤回").
MOVE_LABELS: dict[Move, str] = {
    M.SUPPLEMENT: "要求补正",
    M.RESUBMIT: "提交补正材料",
    M.REVIEW: "转入审查",
    M.INSPECT: "安排踏勘",
    M.APPROVE: "准予许可",
    M.DENY: "作出不予许可决定",
    M.COMPLETE: "办结",
    M.DELIVER: "送达",
    M.REJECT: "不予受理",
    M.WITHDRAW: "撤回",
}

# How staff would describe where the application stands.
_STATUS_PHRASES: dict[Status, str] = {
    S.ACCEPTED: "办件已受理，尚未审查",
    S.SUPPLEMENT_REQUESTED: "办件正等待补正",
    S.UNDER_REVIEW: "办件正在审查",
    S.INSPECTING: "办件正在踏勘",
    S.APPROVED: "办件已准予许可",
    S.DENIED: "办件已不予许可",
    S.NOT_ACCEPTED: "办件已不予受理",
    S.WITHDRAWN: "办件已撤回",
    S.COMPLETED: "办件已办结",
    S.DELIVERED: "办件已送达",
}

_STATION_MOVES = {M.SUPPLEMENT, M.RESUBMIT, M.REJECT, M.WITHDRAW, M.DELIVER, M.COMPLETE}
_DECIDER_MOVES = {M.REVIEW, M.INSPECT, M.APPROVE, M.DENY, M.COMPLETE, M.SUPPLEMENT, M.REJECT}

# Who may make each move. The station takes the application in, asks for and receives missing
# materials, refuses it or records a withdrawal, hands over the result, and closes immediate items
# at the window (``may_move`` enforces that last condition; the table cannot express it). The
# decider reviews, inspects, decides, closes, and may also ask for materials or refuse, since that
# is often where a gap is noticed. The hub may make every move.
MOVE_ACTORS: dict[Move, frozenset[str]] = {
    move: frozenset(
        {"hub"}
        | ({"station"} if move in _STATION_MOVES else set())
        | ({"decider"} if move in _DECIDER_MOVES else set())
    )
    for move in Move
}


# Also a ValueError: callers wrote `except ValueError` for it before it joined SanjiError.
class TransitionError(SanjiError, ValueError):
    """A move that the workflow does not allow from the current status; ``code`` is the refusal's own."""

    default_code = "transition_refused"

    def __init__(self, code: str, message: str, current: Status, move: Move | None) -> None:
        super().__init__(message, code=code)
        self.message = message
        self.current = current
        self.move = move


def stage(status: Status) -> int:
    return STAGE[status]


def is_allowed(current: Status, move: Move, *, immediate: bool) -> bool:
    if (current, move) not in TRANSITIONS:
        return False
    return immediate or (current, move) not in IMMEDIATE_ONLY


def allowed_moves(current: Status, *, immediate: bool) -> tuple[Move, ...]:
    """The moves open from ``current``, in table order (for menus and messages)."""
    return tuple(m for (s, m) in TRANSITIONS if s == current and is_allowed(s, m, immediate=immediate))


def next_status(current: Status, move: Move, *, immediate: bool) -> Status:
    """Where ``move`` leads from ``current``; raises TransitionError if the table does not allow it."""
    current, move = Status(current), Move(move)
    if is_allowed(current, move, immediate=immediate):
        return TRANSITIONS[(current, move)]
    if (current, move) in IMMEDIATE_ONLY:
        raise TransitionError(
            "immediate_only",
            f"只有即办件可以受理后直接办结，请先转入审查 "
            f"(only immediate items may go from {current} straight to completed)",
            current,
            move,
        )
    code = "terminal" if current in TERMINAL else "not_allowed"
    raise TransitionError(
        code,
        f"{_STATUS_PHRASES[current]}，不能{MOVE_LABELS[move]} (cannot {move} an application that is {current})",
        current,
        move,
    )


def move_to(current: Status, target: Status, *, immediate: bool) -> Move:
    """The move that takes an application from ``current`` to ``target`` (the CLI's ``--to``).

    Each status reaches each other status by at most one move, so the answer is unique.
    """
    current, target = Status(current), Status(target)
    for (s, move), to in TRANSITIONS.items():
        if s == current and to == target:
            next_status(current, move, immediate=immediate)  # raises for the immediate-only case
            return move
    if current == target:
        message = f"{_STATUS_PHRASES[current]}，无需再次变更 (the application is already {current})"
    else:
        message = (
            f"{_STATUS_PHRASES[current]}，不能变更为「{STATUS_LABELS[target]}」 "
            f"(no move leads from {current} to {target})"
        )
    code = "terminal" if current in TERMINAL else "not_allowed"
    raise TransitionError(code, message, current, None)


def may_move(role: str, move: Move, *, immediate: bool) -> bool:
    """Whether ``role`` may make ``move``; a station completes only immediate items itself."""
    if role not in MOVE_ACTORS[move]:
        return False
    return not (role == "station" and move == Move.COMPLETE and not immediate)
