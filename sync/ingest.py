"""Admission of one authentic change at the hub: apply it, or quarantine it with a reason.

Every change here has already passed the batch signature check, so it is authentic; nothing authentic
is dropped. What can still be wrong is policy: the change does not fit its batch, its clock is far
ahead of the hub's, or it writes fields its author does not own. Such changes are quarantined with the
reason, for an operator to release or reject; the rest of the batch applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.change import Change, change_from_wire
from sync.hlc import wall_ms
from sync.model import Actor, ModelError, RecordContext, authorize, roles_of


@dataclass(frozen=True)
class Admission:
    change: Change | None  # None when the wire value could not even be read as a change
    reason: str  # "" when admitted

    @property
    def admitted(self) -> bool:
        return self.change is not None and not self.reason


def read_change(raw: object, *, origin: str, epoch: int, seq: int) -> Admission:
    """Decode one wire change and check it belongs where the batch header says it does."""
    try:
        change = change_from_wire(raw)
    except ModelError as exc:
        return Admission(None, f"invalid change: {exc}")
    if (change.origin, change.epoch, change.seq) != (origin, epoch, seq):
        return Admission(change, f"change {change.key} does not match its batch position {(origin, epoch, seq)}")
    return Admission(change, "")


def admit(
    change: Change,
    *,
    actor: Actor,
    context: RecordContext | None,
    hub_wall_ms: int,
    max_ahead_ms: int,
) -> Admission:
    """Policy checks. ``context`` is None when the record's application is unknown to the hub."""
    ahead = wall_ms(change.hlc) - hub_wall_ms
    if ahead > max_ahead_ms:
        return Admission(
            change,
            f"clock ahead: change stamped {ahead // 1000} s after hub time (limit {max_ahead_ms // 1000} s)",
        )
    if context is None:
        return Admission(change, f"{change.entity} {change.id} refers to an application the hub does not hold")
    reason = authorize(change.entity, change.fields, roles_of(actor, context), context.fixed)
    if reason is not None:
        return Admission(change, f"outside the station's rights: {reason}")
    return Admission(change, "")
