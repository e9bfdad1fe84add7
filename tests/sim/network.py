"""Messages between stations and the hub, the links they cross, and the virtual clock's event queue.

A link is one direction between one station and the hub; partitions count, so overlapping cuts heal
only when the last one is restored, whatever the order. Loss, duplication and delay are drawn per
message from the run's one random generator, so reordering falls out of unequal delays.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from node.conversation import Answer, Request

HUB = "hub"


@dataclass(frozen=True)
class Msg:
    src: str
    dst: str
    conv: int
    req: int
    kind: str  # of the request, or of the request answered
    request: Request | None = None
    answer: Answer | None = None

    def describe(self) -> str:
        # Sealed bodies differ from run to run (HPKE draws its own ephemeral key), so a trace names
        # what a message is, never its bytes.
        if self.request is not None:
            what = f"{self.request.kind}({self.request.summary})"
        else:
            assert self.answer is not None
            what = f"answer {self.answer.status} {self.kind}"
        return f"{self.src}->{self.dst} c{self.conv}#{self.req} {what}"


@dataclass
class Event:
    kind: str
    target: str = ""
    value: int = 0
    until: int = 0
    msg: Msg | None = None
    data: object = None

    def describe(self) -> str:
        if self.msg is not None:
            return f"{self.kind} {self.msg.describe()}"
        return f"{self.kind} {self.target} {self.value} {self.until}"


@dataclass
class Queue:
    items: list[tuple[int, int, Event]] = field(default_factory=list)
    counter: int = 0

    def push(self, at: int, event: Event) -> None:
        self.counter += 1
        heapq.heappush(self.items, (at, self.counter, event))

    def pop(self) -> tuple[int, int, Event]:
        return heapq.heappop(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Links:
    """Cut counts per (station, direction); ``up`` is station→hub, ``down`` hub→station."""

    cuts: dict[tuple[str, str], int] = field(default_factory=dict)

    def cut(self, station: str, mode: int, delta: int) -> None:
        directions = {0: ("up", "down"), 1: ("up",), 2: ("down",)}[mode]
        for d in directions:
            self.cuts[(station, d)] = self.cuts.get((station, d), 0) + delta

    def open(self, src: str, dst: str) -> bool:
        if src == HUB:
            return self.cuts.get((dst, "down"), 0) <= 0
        return self.cuts.get((src, "up"), 0) <= 0

    def heal_all(self) -> None:
        self.cuts.clear()


@dataclass
class Wire:
    """Per-message faults: loss, duplication and delay (a slow message may outlive its request)."""

    rng: random.Random
    loss: float
    dup: float
    slow: float

    def deliveries(self) -> list[int]:
        """Delays (ms) of the copies that will arrive; empty when the message is lost."""
        if self.loss and self.rng.random() < self.loss:
            return []
        copies = 2 if self.dup and self.rng.random() < self.dup else 1
        out = []
        for _ in range(copies):
            delay = self.rng.randint(5, 800)
            if self.slow and self.rng.random() < self.slow:
                delay += self.rng.randint(1_000, 15 * 60_000)
            out.append(delay)
        return out
