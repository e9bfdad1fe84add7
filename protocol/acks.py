"""The hub's answers to pushed batches: the `acks` document (one ack per frame) and the `receipt`.

An ack says what became of one pushed frame; for a batch the hub took (applied, or held for review)
it carries the hub's signed `receipt`, which the station keeps as its proof of delivery. The same
`acks` document answers a push over HTTP and travels back on a stick (`hub export`), where its acks
carry no counts (a reader defaults them to 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocol.errors import MalformedError
from protocol.limits import RECEIPT_FRAME_MAX_BYTES
from protocol.wire import Field, read_fields

# What the hub did with a frame (sync.session.AckResult holds the same names as an enum).
RESULTS = ("applied", "duplicate", "quarantined", "gap", "fork", "rejected")


@dataclass(frozen=True)
class Ack:
    """One pushed frame's fate. `batch` is its header hash, b"" when it could not be authenticated."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("batch", "bin"),
        Field("result", "str"),
        Field("expected", "uint", required=False),
        Field("reason", "str", required=False),
        Field("receipt", "bin", required=False),
        Field("applied", "uint", required=False),
        Field("quarantined", "uint", required=False),
    )

    batch: bytes
    result: str
    expected: int = 0  # for a gap: the seq the hub expects next
    reason: str = ""
    receipt: bytes = b""  # a `receipt` frame, or empty
    applied: int | None = None  # None: not sent (the acks `hub export` writes carry no counts)
    quarantined: int | None = None

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "batch": self.batch,
            "result": self.result,
            "expected": self.expected,
            "reason": self.reason,
            "receipt": self.receipt,
        }
        if self.applied is not None:
            wire["applied"] = self.applied
        if self.quarantined is not None:
            wire["quarantined"] = self.quarantined
        return wire

    @classmethod
    def from_wire(cls, body: object) -> Ack:
        f = read_fields(body, cls.FIELDS, "an ack")
        batch, result = f["batch"], f["result"]
        assert isinstance(batch, bytes) and isinstance(result, str)
        if len(batch) not in (0, 32):
            raise MalformedError("an ack's 'batch' is a 32-byte header hash, or empty")
        if result not in RESULTS:
            raise MalformedError(f"an ack's 'result' {result!r} is not one of {', '.join(RESULTS)}")
        receipt = f.get("receipt", b"")
        assert isinstance(receipt, bytes)
        if len(receipt) > RECEIPT_FRAME_MAX_BYTES:
            receipt = b""  # a receipt is a small signed frame; a larger one is kept by nobody
        applied, quarantined = f.get("applied"), f.get("quarantined")
        return cls(
            batch,
            result,
            int(str(f.get("expected", 0))),
            str(f.get("reason", "")),
            receipt,
            applied if isinstance(applied, int) else None,
            quarantined if isinstance(quarantined, int) else None,
        )


@dataclass(frozen=True)
class Acks:
    """Body of an `acks` document: one ack per pushed frame, in push order."""

    KIND: ClassVar[str] = "acks"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("acks", "[ack]"),)

    acks: tuple[Ack, ...]

    def to_wire(self) -> dict[str, object]:
        return {"acks": [a.to_wire() for a in self.acks]}

    @classmethod
    def from_wire(cls, body: object) -> Acks:
        raw = read_fields(body, cls.FIELDS, "an acks document")["acks"]
        assert isinstance(raw, list)
        return cls(tuple(Ack.from_wire(a) for a in raw))


@dataclass(frozen=True)
class Receipt:
    """Body of a `receipt` document: the hub's signed word that it holds a batch."""

    KIND: ClassVar[str] = "receipt"
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("batch", "bin32"),
        Field("origin", "str"),
        Field("epoch", "uint"),
        Field("first_seq", "uint"),
        Field("last_seq", "uint"),
        Field("applied", "uint"),
        Field("quarantined", "uint"),
        Field("hub", "str"),
        Field("hub_name", "str"),
        Field("at", "str"),
    )

    batch: bytes  # the batch's header hash
    origin: str
    epoch: int
    first_seq: int
    last_seq: int
    applied: int
    quarantined: int
    hub: str  # the hub's id
    hub_name: str
    at: str  # ISO 8601, the hub's time

    def to_wire(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in self.FIELDS}

    @classmethod
    def from_wire(cls, body: object) -> Receipt:
        f = read_fields(body, cls.FIELDS, "a receipt")
        return cls(**f)  # type: ignore[arg-type]  # every field required and type-checked above


__all__ = ["RESULTS", "Ack", "Acks", "Receipt"]
