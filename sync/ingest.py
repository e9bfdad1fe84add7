"""Admission of one authentic change at the hub: apply it, or quarantine it with a reason.

Every change here has already passed the batch signature check, so it is authentic; nothing authentic
is dropped. What can still be wrong is policy: the change does not fit its batch, its clock is far
ahead of the hub's, or it writes fields its author does not own. Such changes are quarantined with the
reason, for an operator to release or reject; the rest of the batch applies.
"""

from __future__ import annotations

from sync.admission import Admission, Facts, clock_check, judge
from sync.change import Change, change_from_wire
from sync.model import Actor, ModelError, RecordContext

__all__ = ["Admission", "Facts", "admit", "read_change"]


def read_change(raw: object, *, origin: str, epoch: int, seq: int) -> Admission:
    """Decode one wire change and check it belongs where the batch header says it does."""
    try:
        change = change_from_wire(raw)
    except ModelError as exc:
        # A malformed author keeps its own code, the one the admission question gives it too.
        code = "bad_author" if exc.code == "bad_author" else "invalid"
        return Admission(None, f"无法解读的变更 (invalid change: {exc})", code)
    if (change.origin, change.epoch, change.seq) != (origin, epoch, seq):
        return Admission(
            change,
            f"变更的来源或序号与所在批次不符 (change {change.key} does not match its batch "
            f"position {(origin, epoch, seq)})",
            "misplaced",
        )
    return Admission(change, "")


def admit(
    change: Change,
    *,
    actor: Actor,
    context: RecordContext | None,
    hub_wall_ms: int,
    max_ahead_ms: int,
    facts: Facts | None = None,
) -> Admission:
    """The whole admission question: the clock, then ``sync.admission.judge``. ``facts`` carries what the
    question needs beyond the record's owner; without it only the owner is known (``context``)."""
    late = clock_check(change, hub_wall_ms=hub_wall_ms, max_ahead_ms=max_ahead_ms)
    if late is not None:
        return late
    return judge(change, actor, facts if facts is not None else Facts(context))
