"""The change record: the one thing replicas exchange.

A domain command writes its row and appends exactly one change in the same transaction. A change
names where it was written (``origin``, ``epoch``, ``seq``), its time (``hlc``), the record it touches
(``entity``, ``id``), the fields it writes, and ``base``: for each written field, the HLC of the
version the author had when it wrote (absent if it had none). ``base`` is how the fold tells a
deliberate overwrite from a concurrent one.

``author`` is the staff member who made the change at a station with accounts (issue 16): ``""`` for
none (changes written before issue 16, by a station without accounts, or by the hub's unattended
paths). It travels as a ninth element of the wire array only when there is one, so every change
without an author, its batch body and its digests stay byte for byte what they were. It is inside
the signed batch body, so it is exactly as trustworthy as the station that signed it. The fold and
the anti-entropy digest ignore it: it says who, never what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sync.model import ModelError, validate_fields
from sync.staff_user import author_problem

MAX_CODE = 64
MAX_ID = 128


@dataclass(frozen=True)
class Change:
    origin: str
    epoch: int
    seq: int
    hlc: int
    entity: str
    id: str
    fields: Mapping[str, object]
    base: Mapping[str, int] = field(default_factory=dict)
    author: str = ""

    @property
    def key(self) -> tuple[str, int, int]:
        """The change's identity: an origin never reuses a (epoch, seq)."""
        return (self.origin, self.epoch, self.seq)


def change_to_wire(c: Change) -> list[object]:
    wire: list[object] = [c.origin, c.epoch, c.seq, c.hlc, c.entity, c.id, dict(c.fields), dict(c.base)]
    if c.author:
        wire.append(c.author)
    return wire


def _is_uint(v: object, limit: int = 2**63) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit


def _is_name(v: object, limit: int) -> bool:
    return isinstance(v, str) and 0 < len(v) <= limit and v.isprintable()


def change_from_wire(value: object) -> Change:
    """Validate one wire change against the model; raise :class:`ModelError` with the reason."""
    if not isinstance(value, list) or len(value) not in (8, 9):
        raise ModelError("a change must be an array of 8 elements, or 9 with its author")
    origin, epoch, seq, hlc, entity, rec_id, fields, base = value[:8]
    author = value[8] if len(value) == 9 else ""
    if len(value) == 9 and author == "":
        # No author is written as no ninth element: one change, one encoding, one signature.
        raise ModelError("a change without an author has 8 elements, not an empty ninth", code="bad_author")
    problem = author_problem(author)
    if problem is not None:
        raise ModelError(problem, code="bad_author")
    if not _is_name(origin, MAX_CODE):
        raise ModelError("change origin must be a printable station code")
    if not _is_uint(epoch) or epoch < 1:
        raise ModelError("change epoch must be a positive integer")
    if not _is_uint(seq) or seq < 1:
        raise ModelError("change seq must be a positive integer")
    if not _is_uint(hlc):
        raise ModelError("change hlc must be a non-negative integer")
    if not isinstance(entity, str):
        raise ModelError("change entity must be a string")
    if not _is_name(rec_id, MAX_ID):
        raise ModelError("change id must be a printable string of at most 128 characters")
    if not isinstance(fields, dict) or not isinstance(base, dict):
        raise ModelError("change fields and base must be maps")
    validate_fields(entity, fields)
    for name, version in base.items():
        if name not in fields:
            raise ModelError(f"base names field {name!r} that the change does not write")
        if not _is_uint(version):
            raise ModelError(f"base version of {name!r} must be a non-negative integer")
    return Change(origin, epoch, seq, hlc, entity, rec_id, fields, base, str(author))
