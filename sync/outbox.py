"""The station's outbox, sans I/O: the states a built batch goes through, in one transition table.

Theory of operation
-------------------
A batch is built once and kept byte for byte (node/uplink.py), so a retry is a duplicate the hub
recognises. From then on it is in exactly one ``BatchState``, and only ``step`` moves it: each
``(state, event)`` pair of ``TRANSITIONS`` says the state it leads to and the ``Action`` the adapter
takes. The events are the hub's acknowledgements (``sync.session.AckResult``, through ``EVENT_OF``)
and three of the station's own: a push refused as a whole, a gap asking for batches to be sent
again, and a fork's re-issue under a new epoch. The state's value is its stable code, the word kept
in the outbox's ``state`` column; nothing else spells it.

Two rules shape the table. A batch the hub holds (``HELD``) goes back in the queue only when the hub
says it lacks its seqs (a gap: the hub was restored from a backup). A ``SUPERSEDED`` batch, whose
changes were re-issued under a new epoch, is never offered again: a second copy of an old answer
(a duplicated response, an acknowledgements file carried back by hand) leaves it where it is, or it
would be offered, refused and counted as pending forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sync.session import AckResult


class BatchState(StrEnum):
    PENDING = "pending"  # built, not yet held by the hub: offered at every push
    RECEIPTED = "receipted"  # the hub applied it (or held it already) and signed a receipt
    QUARANTINED = "quarantined"  # the hub keeps it for review; its seqs are consumed
    REJECTED = "rejected"  # the hub refused it; offered again, and shown with the hub's reason
    SUPERSEDED = "superseded"  # re-issued under a new epoch after a fork: never offered again


class Event(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    GAP = "gap"
    FORK = "fork"
    REJECTED = "rejected"
    REFUSED = "refused"  # the hub answered the whole push with an error (HTTP status, no acks)
    RESEND = "resend"  # a gap elsewhere: the hub lacks this batch's seqs, send it again
    REISSUED = "reissued"  # a fork: the changes from this batch on were re-issued under a new epoch


class Action(StrEnum):
    NONE = "none"
    KEEP_RECEIPT = "keep_receipt"  # keep the hub's signed receipt and when it came
    REQUEUE = "requeue"  # send again every held batch of the epoch from the seq the hub expects
    REISSUE = "reissue"  # start a new epoch and re-issue our changes from this batch on


@dataclass(frozen=True)
class Step:
    state: BatchState
    action: Action = Action.NONE
    note: bool = True  # whether the hub's reason is kept with the batch


B, E, A = BatchState, Event, Action

# Batches offered at every push, and counted as pending (not yet held by the hub).
UNSETTLED = frozenset({B.PENDING, B.REJECTED})
# Batches whose seqs the hub holds: settled, and signed for.
HELD = frozenset({B.RECEIPTED, B.QUARANTINED})

EVENT_OF: dict[AckResult, Event] = {
    AckResult.APPLIED: E.APPLIED,
    AckResult.DUPLICATE: E.DUPLICATE,
    AckResult.QUARANTINED: E.QUARANTINED,
    AckResult.GAP: E.GAP,
    AckResult.FORK: E.FORK,
    AckResult.REJECTED: E.REJECTED,
}


def _table() -> dict[tuple[BatchState, Event], Step]:
    t: dict[tuple[BatchState, Event], Step] = {}
    for s in BatchState:
        # The hub holds the seqs: the batch is settled, whatever it was (a late answer included).
        t[(s, E.APPLIED)] = Step(B.RECEIPTED, A.KEEP_RECEIPT)
        t[(s, E.DUPLICATE)] = Step(B.RECEIPTED, A.KEEP_RECEIPT)
        t[(s, E.QUARANTINED)] = Step(B.QUARANTINED, A.KEEP_RECEIPT)
        # The hub expects an earlier seq: what it no longer holds goes again; this batch stays as it is.
        t[(s, E.GAP)] = Step(s, A.REQUEUE)
        # Other content for our seqs (we were copied back): re-issue under a new epoch. The re-issue
        # does nothing for a batch of an epoch already left behind.
        t[(s, E.FORK)] = Step(B.REJECTED, A.REISSUE)
        t[(s, E.REJECTED)] = Step(B.REJECTED)
        t[(s, E.REFUSED)] = Step(B.REJECTED)
        t[(s, E.RESEND)] = Step(B.PENDING) if s in HELD else Step(s, note=False)
        t[(s, E.REISSUED)] = Step(s, note=False) if s is B.RECEIPTED else Step(B.SUPERSEDED, note=False)
    for e in (E.FORK, E.REJECTED, E.REFUSED):
        # Superseded stays superseded: answered again, it must not go back in the queue for good.
        t[(B.SUPERSEDED, e)] = Step(B.SUPERSEDED, A.REISSUE if e is E.FORK else A.NONE, note=False)
    return t


TRANSITIONS: dict[tuple[BatchState, Event], Step] = _table()


def step(state: BatchState, event: Event) -> Step:
    """Where ``event`` takes a batch in ``state``, and what the adapter does about it."""
    return TRANSITIONS[(state, event)]


def moved_by(event: Event) -> frozenset[BatchState]:
    """The states ``event`` changes (what an adapter selects before it steps each batch)."""
    return frozenset(s for s in BatchState if TRANSITIONS[(s, event)].state is not s)
