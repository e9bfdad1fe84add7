"""A township relay that misbehaves (issue 17), for a while, then behaves.

It does to the villages' traffic what a township holding it could: drop it, delay it, cut frames
short, replay what it carried before, reorder it, swap two villages' frames, or write a receipt (or a
feed page answering the village's nonce, which it can read in the signed, unsealed pull request) of
its own, signed with the township's key; or alter the hub's key history it keeps for its villages
(relay-keys.msgpack, ``bad_keys``), which each village checks from the root it pinned at enrolment.
It cannot read a sealed body nor sign as the hub or a village, so that is all it does. What it does
is counted by mode for the run's figures.

Checked (relay.py ``hand``): whatever the relay wrote, cut short, swapped in or replayed as a page
leaves the village exactly as it was (``relay_tamper_taken``); the rest of the run's invariants hold
throughout, and once it behaves the villages converge through it (healing.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from node import uplink
from protocol.acks import Receipt
from protocol.codec import pack, unpack
from protocol.document import sign_document
from protocol.errors import RemoteProtocolError
from protocol.feed import FeedPage
from protocol.frame import peek_header
from tests.sim.faults import HOUR, START_MS

if TYPE_CHECKING:
    from tests.sim.world import World

MODES = ("drop", "delay", "truncate", "replay", "reorder", "swap", "forge_receipt", "bad_keys")
DOC_MODES = MODES[:-1]  # what it does to acks and pages; bad_keys is done to the hub's key history it keeps
Doc = tuple[bytes, bool]  # a document handed to a village, and whether the relay tampered with it


@dataclass
class Malice:
    """The relay's misdeeds between ``start`` and ``until`` (ms); ``modes`` empty: an honest relay."""

    modes: tuple[str, ...] = ()
    start: int = 0
    until: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    counts: dict[str, int] = field(default_factory=dict)
    held: dict[str, list[tuple[str, bytes, bool]]] = field(default_factory=dict)  # delayed or swapped: for later
    handed: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)  # what each village was given
    forwarded: dict[str, list[bytes]] = field(default_factory=dict)  # what went up for each village

    def active(self, now: int) -> bool:
        return bool(self.modes) and self.start <= now < self.until

    def _pick(self, now: int, allowed: tuple[str, ...]) -> str:
        modes = [m for m in self.modes if m in allowed]
        if not self.active(now) or not modes or self.rng.random() < 0.3:
            return ""
        mode = self.rng.choice(modes)
        self.counts[mode] = self.counts.get(mode, 0) + 1
        return mode

    # -- up: what the relay forwards to the hub -------------------------------------------------------

    def up(self, world: World, village: str, batches: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """The batches the township forwards for a village this round (id 0: not from the queue)."""
        mode = self._pick(world.now, ("drop", "delay", "truncate", "replay", "reorder", "swap"))
        out = list(batches)
        if mode == "drop" and out:
            world.relay.queue.forget([i for i, _ in out])  # accepted from the village, thrown away
            out = []
        elif mode == "delay":
            out = []  # held in the queue: forwarded once it behaves (or expired)
        elif mode == "truncate" and out:
            k = self.rng.randrange(len(out))
            rid, frame = out[k]
            out[k] = (rid, frame[: self.rng.randint(1, len(frame) - 1)])
        elif mode == "replay" and self.forwarded.get(village):
            old = self.forwarded[village]
            out += [(0, f) for f in self.rng.sample(old, self.rng.randint(1, min(3, len(old))))]
        elif mode == "reorder":
            out.reverse()
        elif mode == "swap":
            # Another village's batch slipped into this village's push: the hub reads each frame's own
            # signature, and its acks go to whoever signed the first authentic one.
            other = self._other(world, village)
            theirs = world.relay.queue.waiting_batches(other) if other else []
            if theirs:
                out.insert(self.rng.randint(0, len(out)), theirs[0])
        self.forwarded.setdefault(village, []).extend(f for _, f in batches)
        del self.forwarded[village][:-16]
        return out

    # -- down: what the relay hands a village -----------------------------------------------------------

    def down(self, world: World, village: str, kind: str, docs: list[bytes], nonce: bytes = b"") -> list[Doc]:
        """The documents handed to a village that asked (``kind``: "acks" or "feed") instead of ``docs``,
        the hub's answers the queue held for it. ``nonce``: of the pull request it just left."""
        # What it held back goes out once it behaves; another village's answers, swapped in, at once.
        out: list[Doc] = []
        keep = []
        for k, d, tampered in self.held.pop(village, []):
            if k == kind and (tampered or not self.active(world.now)):
                out.append((d, tampered))
            else:
                keep.append((k, d, tampered))
        if keep:
            self.held[village] = keep
        fresh: list[Doc] = [(d, False) for d in docs]
        mode = self._pick(world.now, DOC_MODES)
        if mode == "drop":
            fresh = []
        elif mode == "delay":
            self.held.setdefault(village, []).extend((kind, d, False) for d, _ in fresh)
            fresh = []
        elif mode == "truncate":
            fresh = [
                (d[: self.rng.randint(1, len(d) - 1)], True) if self.rng.random() < 0.7 else (d, t) for d, t in fresh
            ]
        elif mode == "replay":
            old = [d for k, d in self.handed.get(village, []) if k == kind]
            # An old page answers a nonce the village has forgotten: it must be refused as a replay.
            fresh += [(d, kind == "feed") for d in self.rng.sample(old, min(len(old), self.rng.randint(1, 3)))]
        elif mode == "reorder":
            fresh.reverse()
        elif mode == "swap":
            other = self._other(world, village)
            if other:
                q = world.relay.queue
                theirs = [(i, d) for i, k, d in q.waiting_down(other) if k == kind]
                q.forget([i for i, _ in theirs])
                self.held.setdefault(other, []).extend((kind, d, foreign(d, other)) for d, _ in fresh)
                fresh = [(d, foreign(d, village)) for _, d in theirs]
        elif mode == "forge_receipt":
            fresh.append((self.forge(world, village, kind, nonce), True))
        out += fresh
        self.handed.setdefault(village, []).extend((kind, d) for d, t in out if not t)
        del self.handed[village][:-16]
        return out

    def keys(self, world: World, kept: bytes | None) -> tuple[bytes | None, bool]:
        """The key history handed to a village (relay_client.py ``_keys``), and whether it was altered:
        every document in it with one byte of its signature changed, as a relay rewriting the lists
        (to slip in a key of its own) would leave them. The village must refuse the whole history."""
        if kept is None or not self._pick(world.now, ("bad_keys",)):
            return kept, False
        bundle = unpack(kept)
        docs = [d[:-1] + bytes([d[-1] ^ 0x5A]) for d in bundle.get("docs", [])]
        return pack({**bundle, "docs": docs}), bool(docs)

    def _other(self, world: World, village: str) -> str:
        others = [v for v in world.relay.windows if v != village]
        return self.rng.choice(others) if others else ""

    def forge(self, world: World, village: str, kind: str, nonce: bytes) -> bytes:
        """An answer of the relay's own, signed with the township's key under the hub's name: acks with
        receipts for every batch the village has waiting, or a page answering its nonce."""
        township = world.nodes[world.relay.township].st
        hub_id, key = world.hub.hub_id, township.keys.sign
        sign: Callable[..., bytes] = lambda k, body, **kw: sign_document(  # noqa: E731
            k, body, signer=hub_id, recipient=village, signing_key=key, **kw
        )
        if kind == "feed":
            header = {"nonce": nonce, "after": 0, "next": 10**6, "more": False}
            return sign(FeedPage.KIND, {"entries": [], "releases": []}, extra_header=header)
        acks = []
        for o, _frame in uplink.unsettled(world.nodes[village].st):
            n = o.last_seq - o.first_seq + 1
            receipt = Receipt(o.batch_hash, village, o.epoch, o.first_seq, o.last_seq, n, 0, hub_id, "", "")
            wire = {"batch": o.batch_hash, "result": "applied", "expected": 0, "reason": ""}
            acks.append({**wire, "receipt": sign(Receipt.KIND, receipt.to_wire())})
        return sign("acks", {"acks": acks})


def foreign(doc: bytes, village: str) -> bool:
    """Whether a document is addressed to another station. A swap is not always one: when the relay
    slipped this village's batch into another's push, the hub addressed that push's acks to it."""
    try:
        return peek_header(doc).get("recipient") != village
    except RemoteProtocolError:
        return True


def draw(rng: random.Random, villages: int, start: int, end: int) -> Malice:
    """Two relay runs in three misbehave, in one or two ways, for two hours to a day inside [start, end)."""
    if rng.random() >= 2 / 3:
        return Malice(rng=rng)
    modes = [m for m in MODES if m != "swap" or villages > 1]
    picked = tuple(sorted(rng.sample(modes, rng.randint(1, 2))))
    begin = rng.randint(start, max(start, end - 2 * HOUR))
    return Malice(picked, begin, begin + rng.randint(2 * HOUR, 24 * HOUR), rng)


def describe(malice: Malice) -> str:
    if not malice.modes:
        return "honest"
    when = f"t+{(malice.start - START_MS) / HOUR:.0f}h..{(malice.until - START_MS) / HOUR:.0f}h"
    return f"{'+'.join(malice.modes)} {when}"
