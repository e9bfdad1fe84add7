"""Anti-entropy on the wire: the station's `reconcile-request`, the hub's `reconcile` answers, and the
hub-signed `summary` of a station's applications.

One HTTP round per step; the request names its step in `op` and carries only that step's fields (see
``hub/reconcile.py`` for the conversation). The answer does not repeat the op: the station knows which
step it asked, and reads the answer with that step's class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocol.errors import MalformedError
from protocol.wire import U62, Field, below, read_fields

MAX_KEYS = 256  # record keys in one `records` step
FIGURES = ("buckets_compared", "divergent", "repaired", "bytes")  # what `done` reports, stored by the hub
_STATION_COUNTS = ("repaired_here", "repaired_there", "held_there")
OPS: dict[str, tuple[str, ...]] = {
    "merkle": ("request",),
    "records": ("keys",),
    "repair": ("changes", "foreign", "chain"),
    "summary": (),
    "done": (*FIGURES, "summary_match", *_STATION_COUNTS),
}


@dataclass(frozen=True)
class ReconcileRequest:
    """Body of a `reconcile-request` document (station -> hub): `op`, `at_ms`, and the op's fields."""

    KIND: ClassVar[str] = "reconcile-request"
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("op", "str"),
        Field("at_ms", "uint"),
        Field("request", "map", required=False),
        Field("keys", "[str]", required=False),
        Field("changes", "[change]", required=False),
        Field("foreign", "[change]", required=False),
        Field("chain", "map", required=False),
        *(Field(name, "uint", required=False) for name in FIGURES),
        Field("summary_match", "bool or nil", required=False),
        *(Field(name, "uint", required=False) for name in _STATION_COUNTS),
    )

    op: str
    at_ms: int
    request: dict[str, object] | None = None  # merkle: a sync.merkle request
    keys: tuple[str, ...] = ()  # records: record keys, at most MAX_KEYS
    changes: tuple[object, ...] = ()  # repair: own changes the hub lacks
    foreign: tuple[object, ...] = ()  # repair: other origins' changes the hub lacks
    chain: dict[str, object] | None = None  # repair: {"epoch", "batched_seq", "hash"} of the station
    buckets_compared: int = 0  # done: the session's figures
    divergent: int = 0
    repaired: int = 0
    bytes: int = 0
    summary_match: bool | None = None
    repaired_here: int = 0
    repaired_there: int = 0
    held_there: int = 0

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"op": self.op, "at_ms": self.at_ms}
        for name in OPS.get(self.op, ()):
            value = getattr(self, name)
            if value is None and name != "summary_match":  # a `done` says "not compared" as nil
                continue
            wire[name] = list(value) if isinstance(value, tuple) else value
        return wire

    @classmethod
    def from_wire(cls, body: object) -> ReconcileRequest:
        what = "a reconcile request"
        f = read_fields(body, cls.FIELDS, what)
        op = str(f["op"])
        if op not in OPS:
            raise MalformedError(f"unknown reconcile step {op!r}")
        keys = f.get("keys", [])
        assert isinstance(keys, list)
        if op == "records" and ("keys" not in f or len(keys) > MAX_KEYS):
            raise MalformedError(f"records needs at most {MAX_KEYS} record keys")
        if op == "repair" and not ("changes" in f and "foreign" in f):
            raise MalformedError("repair needs lists of changes")
        figures = {k: below(int(str(f.get(k, 0))), U62, k, what) for k in FIGURES + _STATION_COUNTS}
        request, chain, match = f.get("request"), f.get("chain"), f.get("summary_match")
        changes, foreign = f.get("changes", []), f.get("foreign", [])
        assert isinstance(changes, list) and isinstance(foreign, list)
        return cls(
            op,
            below(int(str(f["at_ms"])), U62, "at_ms", what),
            request if isinstance(request, dict) else None,
            tuple(str(k) for k in keys),
            tuple(changes),
            tuple(foreign),
            chain if isinstance(chain, dict) else None,
            summary_match=match if isinstance(match, bool) else None,
            **figures,
        )


@dataclass(frozen=True)
class MerkleAnswer:
    """Body of the `reconcile` answer to `merkle`: a sync.merkle response."""

    KIND: ClassVar[str] = "reconcile"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("response", "map"),)

    response: dict[str, object]

    def to_wire(self) -> dict[str, object]:
        return {"response": self.response}

    @classmethod
    def from_wire(cls, body: object) -> MerkleAnswer:
        response = read_fields(body, cls.FIELDS, "a Merkle answer")["response"]
        assert isinstance(response, dict)
        return cls(response)


@dataclass(frozen=True)
class RecordsAnswer:
    """Body of the `reconcile` answer to `records`: the hub's changes to those records, and which
    (origin, epoch, seq) it holds of them."""

    KIND: ClassVar[str] = "reconcile"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("changes", "[change]"), Field("held", "[[str, uint, uint]]"))

    changes: tuple[object, ...]
    held: tuple[tuple[str, int, int], ...]

    def to_wire(self) -> dict[str, object]:
        return {"changes": list(self.changes), "held": [list(h) for h in self.held]}

    @classmethod
    def from_wire(cls, body: object) -> RecordsAnswer:
        f = read_fields(body, cls.FIELDS, "a records answer")
        changes, held = f["changes"], f["held"]
        assert isinstance(changes, list) and isinstance(held, list)
        return cls(tuple(changes), tuple((str(h[0]), int(h[1]), int(h[2])) for h in held))


@dataclass(frozen=True)
class RepairAnswer:
    """Body of the `reconcile` answer to `repair`: what became of the re-sent changes."""

    KIND: ClassVar[str] = "reconcile"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("applied", "uint"), Field("held", "uint"), Field("skipped", "uint"))

    applied: int
    held: int
    skipped: int

    def to_wire(self) -> dict[str, object]:
        return {"applied": self.applied, "held": self.held, "skipped": self.skipped}

    @classmethod
    def from_wire(cls, body: object) -> RepairAnswer:
        f = read_fields(body, cls.FIELDS, "a repair answer")
        return cls(int(str(f["applied"])), int(str(f["held"])), int(str(f["skipped"])))


@dataclass(frozen=True)
class SummaryAnswer:
    """Body of the `reconcile` answer to `summary` and to `done`: a `summary` document."""

    KIND: ClassVar[str] = "reconcile"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("summary", "frame"),)

    summary: bytes

    def to_wire(self) -> dict[str, object]:
        return {"summary": self.summary}

    @classmethod
    def from_wire(cls, body: object) -> SummaryAnswer:
        summary = read_fields(body, cls.FIELDS, "a summary answer")["summary"]
        assert isinstance(summary, bytes)
        return cls(summary)


@dataclass(frozen=True)
class Summary:
    """Body of a `summary` document: the hub's count of a station's applications by status."""

    KIND: ClassVar[str] = "summary"
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("station", "str"),
        Field("at", "str"),
        Field("by_status", "{str: uint}"),
    )

    station: str
    at: str  # ISO 8601, the hub's time
    by_status: dict[str, int]

    def to_wire(self) -> dict[str, object]:
        return {"station": self.station, "at": self.at, "by_status": dict(self.by_status)}

    @classmethod
    def from_wire(cls, body: object) -> Summary:
        f = read_fields(body, cls.FIELDS, "a summary")
        by_status = f["by_status"]
        assert isinstance(by_status, dict)
        return cls(str(f["station"]), str(f["at"]), {str(k): int(v) for k, v in by_status.items()})


__all__ = [
    "MAX_KEYS",
    "OPS",
    "MerkleAnswer",
    "ReconcileRequest",
    "RecordsAnswer",
    "RepairAnswer",
    "Summary",
    "SummaryAnswer",
]
