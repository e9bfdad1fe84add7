"""One origin's chain of batches and a model of the hub's view of it, shared by the tests of
``sync/session.py`` (``test_session`` for ``classify``, ``test_push_round`` for ``PushRound``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType

from sync.session import Cursor, Decision, Verdict, classify

ZERO = bytes(32)


def digest(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


@dataclass(frozen=True)
class Batch:
    first: int
    last: int
    prev: bytes
    hash: bytes


def chain(sizes: list[int], *, salt: str = "honest", start: int = 1) -> list[Batch]:
    """One origin's batches: gapless seqs, each batch's ``prev`` the hash of the one before.

    The hash covers the salt (standing in for the content), the range and ``prev``, as a real batch id
    covers its signed header, so two chains with different salts differ in every batch.
    """
    out: list[Batch] = []
    prev, seq = ZERO, start
    for size in sizes:
        b = Batch(seq, seq + size - 1, prev, digest(salt, seq, seq + size - 1, prev))
        out.append(b)
        prev, seq = b.hash, b.last + 1
    return out


def decide(cursor: Cursor, b: Batch, applied: dict[tuple[int, int], bytes]) -> Decision:
    return classify(
        cursor,
        first_seq=b.first,
        last_seq=b.last,
        prev=b.prev,
        batch_hash=b.hash,
        applied=MappingProxyType(dict(applied)),
    )


@dataclass
class HubModel:
    """The hub's view of one (origin, epoch): the cursor and every applied range."""

    cursor: Cursor = field(default_factory=Cursor)
    applied: dict[tuple[int, int], bytes] = field(default_factory=dict)
    applies: dict[bytes, int] = field(default_factory=dict)

    def offer(self, b: Batch) -> Decision:
        d = decide(self.cursor, b, self.applied)
        if d.verdict is Verdict.APPLY:
            self.applied[(b.first, b.last)] = b.hash
            self.cursor = Cursor(b.last + 1, b.hash)
            self.applies[b.hash] = self.applies.get(b.hash, 0) + 1
        return d
