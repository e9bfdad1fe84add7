"""The entity model: one declarative rule table per entity.

Theory of operation. A record is a set of fields; each field is a register that every replica merges
the same way. The table below says, for every field of every entity, three things:

- its merge rule: ``LWW`` (last writer wins by ``(hlc, origin)``), or ``STATUS`` (the workflow order
  first, then the author's authority, then ``(hlc, origin)``);
- the type its value must have on the wire (anything else is refused before it reaches the fold);
- the roles allowed to write it (field ownership). Roles are computed per record by
  :func:`roles_of`: the accepting ``station``, the ``decider`` (the tier that decides the item, or the
  hub), the ``inspector`` of a task, and the ``hub``.

Material states are fields named ``m.<material name>``: one LWW register per material, so two
stations supplementing different materials never collide. Events and ratings are records written once
with fresh ids, so together they form grow-only sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from protocol.errors import SanjiError

MATERIAL_PREFIX = "m."
MAX_TEXT = 4000
TIERS = ("district", "township", "street", "village", "community", "field")

# A tier's weight when two final outcomes meet: the hub's decision stands over a township's, which
# stands over a village's. Field devices never write a status.
AUTHORITY = {"district": 3, "township": 2, "street": 2, "village": 1, "community": 1, "field": 0}


class Rule(Enum):
    LWW = "lww"
    STATUS = "status"


class Kind(Enum):
    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    MATERIAL = "material"  # [state, due date "YYYY-MM-DD" or ""]
    TEXT_LIST = "text_list"
    GPS = "gps"  # [lat, lon, accuracy_m]
    CHECKLIST = "checklist"  # {item: bool}
    SCORE = "score"  # 好差评: an integer from 1 (very bad) to 5 (very good)


@dataclass(frozen=True)
class FieldSpec:
    rule: Rule
    kind: Kind
    writers: frozenset[str]


def _f(kind: Kind, *writers: str, rule: Rule = Rule.LWW) -> FieldSpec:
    return FieldSpec(rule, kind, frozenset(writers) | {"hub"})


T, NUM, B = Kind.TEXT, Kind.INT, Kind.BOOL
ST, DE, IN = "station", "decider", "inspector"

APPLICATION: dict[str, FieldSpec] = {
    "number": _f(T, ST),
    "station": _f(T, ST),
    "item": _f(T, ST),
    "catalogue_version": _f(NUM, ST),
    "theme": _f(T, ST),
    "kind": _f(T, ST),
    "applicant_name": _f(T, ST),
    "applicant_id": _f(T, ST),
    "applicant_phone": _f(T, ST),
    "address": _f(T, ST),
    "accepted_at": _f(T, ST),
    "due_date": _f(T, ST, DE),
    "paused": _f(B, DE),
    "status": _f(T, ST, DE, rule=Rule.STATUS),
    "decision": _f(T, DE),
    "note": _f(T, ST, DE),
    # The citizen's tracking code (sync/tracking.py): written at acceptance by the accepting station; the
    # hub replaces it by "" the moment it opens the batch, so every copy but the station's holds "".
    "tracking": _f(T, ST),
}
# Any material field: the accepting station records and supplements materials; the decider may mark
# one missing during review.
MATERIAL = _f(Kind.MATERIAL, ST, DE)

EVENT: dict[str, FieldSpec] = {
    "application": _f(T, ST, DE, IN),
    "action": _f(T, ST, DE, IN),
    "actor": _f(T, ST, DE, IN),
    "from_status": _f(T, ST, DE, IN),
    "to_status": _f(T, ST, DE, IN),
    "note": _f(T, ST, DE, IN),
}

TASK: dict[str, FieldSpec] = {
    "application": _f(T, DE),
    "inspector": _f(T, DE),
    "due": _f(T, DE),
    "status": _f(T, DE, IN),
    "item": _f(T, DE),
    "address": _f(T, DE),
    "phone": _f(T, DE),
    "checklist": _f(Kind.TEXT_LIST, DE),
    "number": _f(T, DE),  # the application's 办件编号, so the inspector can name it without the application
}

REPORT: dict[str, FieldSpec] = {
    "task": _f(T, IN),
    "application": _f(T, IN),
    "result": _f(T, IN),
    "findings": _f(T, IN),
    "checklist": _f(Kind.CHECKLIST, IN),
    "gps": _f(Kind.GPS, IN),
    "photos": _f(Kind.TEXT_LIST, IN),
    "signature": _f(T, IN),
    "recorded_at": _f(T, IN),
    "gps_flag": _f(T, IN),  # why the position looks implausible ("" or absent when it does not)
    "check_flag": _f(T, IN),  # a pass with checklist lines answered 否 (sync/report_flag.py)
}

RATING: dict[str, FieldSpec] = {
    "application": _f(T, ST),
    "score": _f(Kind.SCORE, ST),
    "comment": _f(T, ST),
}

# Citizens' personal data (issue 16): a station keeps these sealed at rest (node/at_rest.py) and lists
# them masked; on the wire to the hub they are always plaintext text (the model refuses anything else).
PERSONAL: dict[str, frozenset[str]] = {
    "application": frozenset({"applicant_name", "applicant_id", "applicant_phone", "address"}),
    "task": frozenset({"address", "phone"}),
}


def is_personal(entity: str, name: str) -> bool:
    fields = PERSONAL.get(entity)
    return fields is not None and name in fields


ENTITIES: dict[str, dict[str, FieldSpec]] = {
    "application": APPLICATION,
    "event": EVENT,
    "task": TASK,
    "report": REPORT,
    "rating": RATING,
}

# A password a person changed at their station, travelling up to the hub's copy of the account
# (sync/staff_change.py): its own question, not the applications' rights table, so it is kept out of
# ENTITIES (whose every field the applications' rules cover) and known to the model beside it.
STAFF_PASSWORD: dict[str, FieldSpec] = {
    "password_hash": _f(T, ST),
    "grant_key": _f(T, ST),
    "seen": _f(NUM, ST),  # the hub's version of the account the station held when the person changed it
}
ACCOUNT_ENTITIES: dict[str, dict[str, FieldSpec]] = {"staff": STAFF_PASSWORD}
_TABLES: dict[str, dict[str, FieldSpec]] = {**ENTITIES, **ACCOUNT_ENTITIES}

# Fixed once written: who took the application, what it is and under which number. Moving an
# application to another station would hand a citizen's data to a neighbour; re-pointing an event or
# task at another application would forge its history.
FIXED_FIELDS = frozenset({"number", "station", "item", "catalogue_version", "kind", "accepted_at", "application"})

MATERIAL_STATES = ("submitted", "deferred", "supplemented", "missing")
REPORT_RESULTS = ("pass", "fail", "rectify")


# Also a ValueError: callers wrote `except ValueError` for it before it joined SanjiError.
class ModelError(SanjiError, ValueError):
    """A change names an entity, field or value the model does not know. The peer is at fault."""

    default_code = "invalid_change"


def field_spec(entity: str, name: str) -> FieldSpec:
    table = _TABLES.get(entity)
    if table is None:
        raise ModelError(f"unknown entity {entity!r}")
    if not isinstance(name, str):
        raise ModelError(f"field names of {entity} must be text, not {type(name).__name__}")
    spec = table.get(name)
    if spec is not None:
        return spec
    if entity == "application" and name.startswith(MATERIAL_PREFIX) and len(name) > len(MATERIAL_PREFIX):
        return MATERIAL
    raise ModelError(f"unknown field {name!r} of {entity}")


def _text_ok(v: object) -> bool:
    return isinstance(v, str) and len(v) <= MAX_TEXT and "\x00" not in v


def check_value(kind: Kind, value: object) -> bool:
    """True when ``value`` has the wire shape of ``kind``. Strings are bounded and NUL-free."""
    if kind is Kind.TEXT:
        return _text_ok(value)
    if kind is Kind.INT:
        return isinstance(value, int) and not isinstance(value, bool) and -(2**53) < value < 2**53
    if kind is Kind.BOOL:
        return isinstance(value, bool)
    if kind is Kind.SCORE:
        return type(value) is int and 1 <= value <= 5
    if kind is Kind.MATERIAL:
        return (
            isinstance(value, list)
            and len(value) == 2
            and value[0] in MATERIAL_STATES
            and _text_ok(value[1])
            and len(value[1]) in (0, 10)
        )
    if kind is Kind.TEXT_LIST:
        return isinstance(value, list) and len(value) <= 64 and all(_text_ok(x) for x in value)
    if kind is Kind.GPS:
        return (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        )
    if kind is Kind.CHECKLIST:
        return (
            isinstance(value, dict)
            and len(value) <= 64
            and all(_text_ok(k) and isinstance(v, bool) for k, v in value.items())
        )
    return False  # pragma: no cover - every Kind is handled above


def validate_fields(entity: str, fields: Mapping[str, object]) -> None:
    """Raise :class:`ModelError` unless every field is known and well typed."""
    if not fields:
        raise ModelError(f"a change to {entity} must write at least one field")
    table = _TABLES.get(entity, {})
    for name, value in fields.items():
        # Every change of every batch passes here, field by field: plain text fields, the common
        # case, are checked inline; everything else takes the general path.
        spec = table.get(name) if type(name) is str else None
        if spec is None:
            spec = field_spec(entity, name)
        if spec.kind is Kind.TEXT and type(value) is str:
            if len(value) <= MAX_TEXT and "\x00" not in value:
                continue
        elif check_value(spec.kind, value):
            continue
        raise ModelError(f"field {name!r} of {entity} has a value of the wrong shape")


@dataclass(frozen=True)
class Actor:
    """Who wrote a change: a station code and its tier (the hub's tier is ``district``)."""

    code: str
    tier: str


@dataclass(frozen=True)
class RecordContext:
    """What the rights check needs to know about the application a change touches."""

    station: str  # the accepting station
    station_parent: str | None  # its township or street centre, if any
    decided_at: str  # the tier that decides the item
    inspector: str | None = None  # for tasks and reports: the assigned field device
    fixed: Mapping[str, object] = field(default_factory=dict)  # current values of the record's FIXED fields


def roles_of(actor: Actor, ctx: RecordContext) -> frozenset[str]:
    """The roles ``actor`` holds over the record described by ``ctx``."""
    if actor.tier == "district":
        return frozenset({"hub", ST, DE, IN})
    roles: set[str] = set()
    if actor.code == ctx.station:
        roles.add(ST)
    # A township or street centre decides its own tier's items for itself and for its villages.
    if (
        actor.tier in ("township", "street")
        and ctx.decided_at in ("township", "street")
        and actor.code in (ctx.station, ctx.station_parent)
    ):
        roles.add(DE)
    if ctx.inspector is not None and actor.code == ctx.inspector:
        roles.add(IN)
    return frozenset(roles)


# Statuses a role may write; the workflow table checks the move itself where the author is.
STATUS_WRITERS: dict[str, frozenset[str]] = {
    "accepted": frozenset({ST, DE}),
    "supplement_requested": frozenset({ST, DE}),
    "under_review": frozenset({DE}),
    "inspecting": frozenset({DE}),
    "approved": frozenset({DE}),
    "denied": frozenset({DE}),
    "not_accepted": frozenset({ST, DE}),
    "withdrawn": frozenset({ST, DE}),
    "completed": frozenset({ST, DE}),
    "delivered": frozenset({ST, DE}),
}


_WRITABLE: dict[tuple[str, frozenset[str]], frozenset[str]] = {}


def _writable(entity: str, roles: frozenset[str]) -> frozenset[str]:
    """The table's fields of ``entity`` that ``roles`` may write (material fields are never listed, so
    a change writing one takes the field-by-field path). Roles come from a handful of sets."""
    key = (entity, roles)
    found = _WRITABLE.get(key)
    if found is None:
        table = ENTITIES.get(entity, {})
        found = _WRITABLE[key] = frozenset(n for n, spec in table.items() if spec.writers & roles)
    return found


def authorize(
    entity: str, fields: Mapping[str, object], roles: frozenset[str], fixed: Mapping[str, object] | None = None
) -> str | None:
    """Field ownership: ``None`` when the roles may write every field, else the reason they may not.
    ``fixed`` holds the record's current values of :data:`FIXED_FIELDS`, which nobody may change."""
    for name, value in (fixed or {}).items():
        if name in FIXED_FIELDS and name in fields and fields[name] != value:
            return f"{entity}.{name} is fixed once written ({value!r}) and cannot become {fields[name]!r}"
    if "hub" in roles:
        return None
    writable = _writable(entity, roles)
    for name, value in fields.items():
        if name not in writable:  # material fields, or a field these roles may not write
            spec = field_spec(entity, name)
            if not (spec.writers & roles):
                return f"{entity}.{name} may not be written by {'/'.join(sorted(roles)) or 'this station'}"
        if entity == "application" and name == "status":
            allowed = STATUS_WRITERS.get(str(value), frozenset())
            if not (allowed & roles):
                return f"status {value!r} may not be set by {'/'.join(sorted(roles)) or 'this station'}"
    return None
