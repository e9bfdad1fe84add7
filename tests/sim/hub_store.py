"""The hub's database, in memory: every table hub/store.py keeps that the simulator needs.

A mutation happens inside one call of ``hub_model.SimHub``; ``savepoint`` is what a rolled-back
transaction returns to, and a deep copy is a backup.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sync.session import AckResult, Cursor
from tests.sim.replica_model import MemRecords


@dataclass
class StationInfo:
    code: str
    tier: str
    parent: str
    sign_pub: bytes
    seal_pub: bytes


@dataclass
class HeldRow:
    qid: int
    origin: str
    epoch: int
    seq: int
    batch: bytes
    raw: bytes
    reason: str
    whole_batch: bool
    state: str = "open"


@dataclass
class BatchRow:
    origin: str
    epoch: int
    first_seq: int
    last_seq: int
    result: str
    receipt: bytes


@dataclass
class HubStore:
    stations: dict[str, StationInfo] = field(default_factory=dict)
    cursors: dict[tuple[str, int], Cursor] = field(default_factory=dict)
    batches: dict[bytes, BatchRow] = field(default_factory=dict)
    records: MemRecords = field(default_factory=MemRecords)
    feeds: dict[str, list[int]] = field(default_factory=dict)
    quarantine: list[HeldRow] = field(default_factory=list)
    alerts: list[tuple[str, str, str]] = field(default_factory=list)
    releases: dict[int, bytes] = field(default_factory=dict)
    release_ms: dict[int, int] = field(default_factory=dict)
    hlc: int = 0
    epoch: int = 1  # of the hub's own changes (hub/service.py always writes epoch 1)
    seq: int = 0
    generation: str = "g1"
    rejections: int = 0

    def savepoint(self) -> HubStore:
        """What a rolled-back transaction returns to (ingest and repair mutate only these containers)."""
        return replace(
            self,
            cursors=dict(self.cursors),
            batches=dict(self.batches),
            records=self.records.copy(),
            feeds={k: list(v) for k, v in self.feeds.items()},
            quarantine=list(self.quarantine),
            alerts=list(self.alerts),
        )


@dataclass(frozen=True)
class FrameAck:
    batch: bytes
    origin: str
    result: AckResult
    expected_seq: int = 0
    reason: str = ""
    receipt: bytes = b""
    status: int = 200

    def to_wire(self) -> dict[str, object]:
        return {
            "batch": self.batch,
            "result": self.result.value,
            "expected": self.expected_seq,
            "reason": self.reason,
            "receipt": self.receipt,
        }
