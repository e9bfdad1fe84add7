"""Sync sessions, sans I/O: what the hub decides about an incoming batch, and the node's push round.

Theory of operation. Every origin numbers its changes gaplessly within an epoch and chains its
batches by hash. The hub keeps, per ``(origin, epoch)``, a cursor: the next seq it expects and the hash
of the last batch it applied, plus the range and hash of every batch it has applied. From those alone
an incoming batch is exactly one of:

- ``APPLY``: it starts at the expected seq and chains onto the last batch;
- ``DUPLICATE``: the very batch (same range, same hash) was applied before: acknowledge, change nothing;
- ``GAP``: it starts past the expected seq: answer with the seq the hub expects;
- ``FORK``: it claims seqs the hub already holds with other content, or does not chain onto the last
  batch: a cloned or restored station. The hub keeps it (quarantined) and raises an alert.

These are values, not exceptions. The node side is a table-driven state machine: it offers its
pending batches in order, reads the acknowledgement of each, and returns the next request or
``None`` when the round is over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    APPLY = "apply"
    DUPLICATE = "duplicate"
    GAP = "gap"
    FORK = "fork"


@dataclass(frozen=True)
class Cursor:
    """What the hub holds of one ``(origin, epoch)``."""

    next_seq: int = 1
    last_hash: bytes = bytes(32)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    expected_seq: int
    reason: str = ""


def classify(
    cursor: Cursor,
    *,
    first_seq: int,
    last_seq: int,
    prev: bytes,
    batch_hash: bytes,
    applied: Mapping[tuple[int, int], bytes],
) -> Decision:
    """Decide what to do with a verified batch. ``applied`` maps (first, last) to the batch hash."""
    expected = cursor.next_seq
    if first_seq == expected:
        if prev == cursor.last_hash:
            return Decision(Verdict.APPLY, expected)
        return Decision(Verdict.FORK, expected, "batch does not chain onto the last batch applied")
    if first_seq > expected:
        return Decision(Verdict.GAP, expected, f"hub expects seq {expected} first")
    known = applied.get((first_seq, last_seq))
    if known == batch_hash:
        return Decision(Verdict.DUPLICATE, expected)
    if known is None:
        return Decision(Verdict.FORK, expected, "batch overlaps seqs already applied, under other batch boundaries")
    return Decision(Verdict.FORK, expected, "same seqs as an applied batch but different content")


# --- the node's push round -------------------------------------------------------------------


class PushState(Enum):
    SENDING = "sending"
    DONE = "done"


class AckResult(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"  # authentic, kept at the hub for review; the seqs are consumed
    GAP = "gap"
    FORK = "fork"
    REJECTED = "rejected"  # refused as inauthentic or from a revoked station; nothing kept


# Acknowledgements that mean "the hub holds these seqs": the batch leaves the queue.
SETTLED = frozenset({AckResult.APPLIED, AckResult.DUPLICATE, AckResult.QUARANTINED})


@dataclass(frozen=True)
class Outgoing:
    """One batch waiting in the node's outbox."""

    epoch: int
    first_seq: int
    last_seq: int
    batch_hash: bytes
    size: int


@dataclass(frozen=True)
class Ack:
    batch_hash: bytes
    result: AckResult
    expected_seq: int = 0
    reason: str = ""


@dataclass
class PushRound:
    """Offers pending batches in order, a request at a time, and records what the hub answered.

    ``next_request()`` returns the hashes of the batches to send next (bounded by count and bytes), or
    ``None`` when there is nothing more to send in this round. ``receive(acks)`` records the answers.
    A rejected batch does not stop the round: the rest of the queue is still offered. A gap rewinds
    to the seq the hub expects, once per round, so a hub restored from a backup gets what it lacks.
    """

    pending: Sequence[Outgoing]
    max_count: int = 64
    max_bytes: int = 4 * 1024 * 1024
    state: PushState = PushState.SENDING
    settled: dict[bytes, Ack] = field(default_factory=dict)
    failed: dict[bytes, Ack] = field(default_factory=dict)
    _pos: int = 0
    _rewound: bool = False

    def next_request(self) -> list[bytes] | None:
        if self.state is PushState.DONE:
            return None
        out: list[bytes] = []
        size = 0
        while self._pos < len(self.pending):
            b = self.pending[self._pos]
            if out and (len(out) >= self.max_count or size + b.size > self.max_bytes):
                break
            out.append(b.batch_hash)
            size += b.size
            self._pos += 1
        if not out:
            self.state = PushState.DONE
            return None
        return out

    def receive(self, acks: Sequence[Ack]) -> None:
        for ack in acks:
            if ack.result in SETTLED:
                self.settled[ack.batch_hash] = ack
                self.failed.pop(ack.batch_hash, None)
                continue
            self.failed[ack.batch_hash] = ack
            if ack.result is AckResult.GAP and not self._rewound:
                self._rewind_to(ack)

    def _rewind_to(self, ack: Ack) -> None:
        epoch = next((b.epoch for b in self.pending if b.batch_hash == ack.batch_hash), None)
        for i, b in enumerate(self.pending):
            if b.epoch == epoch and b.first_seq <= ack.expected_seq <= b.last_seq:
                self._pos = min(self._pos, i)
                self._rewound = True
                return

    @property
    def unsent(self) -> int:
        return sum(1 for b in self.pending if b.batch_hash not in self.settled)
