"""The shared machinery of typed document bodies: a field table per kind, read once, signed once.

Every document body is a msgpack map. Each kind's dataclass (``protocol/acks.py``, ``feed.py``,
``reconciliation.py``, ``enrolment_docs.py``, ``hubkey_docs.py``, ``blob.py``) names its fields in
``FIELDS``: the wire name, the wire type in the words ``docs/protocol.md`` uses, and whether a receiver
requires it. :func:`read_fields` checks a received body against that table (so a reader never looks at
a field it has not type-checked), and ``tests/protocol/test_spec_tables.py`` checks the tables in
``docs/protocol.md`` against the same ``FIELDS``, so the specification and the code cannot drift.

Fields a reader does not know are ignored, so a newer sender's additions do not break an older
station. :func:`sign_message` signs a body and hands back the frame with its header hash, so nothing
has to verify a frame it has just made to learn its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from protocol.document import sign_document_hashed
from protocol.errors import MalformedError

U62 = 2**62  # counters and times: non-negative and far below any overflow
# The HTTP header that carries a signed `pull` or `blob` document, base64: one name for both ends.
REQUEST_HEADER = "X-Sanji-Request"


@dataclass(frozen=True)
class Field:
    """One body field: its wire name, its wire type (as docs/protocol.md writes it), and presence."""

    name: str
    type: str
    required: bool = True


def _is_uint(v: object) -> bool:
    return type(v) is int and 0 <= v < 2**64


def _list_of(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _map_of(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and check(x) for k, x in v.items())


def _str(v: object) -> bool:
    return isinstance(v, str)


def _bin(v: object) -> bool:
    return isinstance(v, bytes)


# The wire types a field table may name. Some are only shape-checked here, because their own rules
# live where they are opened: a "frame" is a bin holding a whole signed frame (verified by whoever
# opens it, so a bad release inside a feed page costs only the release), a change is checked by
# sync/change.py, a Merkle message by sync/merkle.py.
TYPES: dict[str, Callable[[object], bool]] = {
    "str": _str,
    "int": lambda v: type(v) is int,
    "uint": _is_uint,
    "bool": lambda v: type(v) is bool,
    "bool or nil": lambda v: v is None or type(v) is bool,
    "bin": _bin,
    "bin16": lambda v: isinstance(v, bytes) and len(v) == 16,
    "bin32": lambda v: isinstance(v, bytes) and len(v) == 32,
    "frame": _bin,
    "frame or nil": lambda v: v is None or _bin(v),
    "map": lambda v: isinstance(v, dict),
    "[str]": _list_of(_str),
    "[frame]": _list_of(_bin),
    "[bin32]": _list_of(lambda v: isinstance(v, bytes) and len(v) == 32),
    "[ack]": _list_of(lambda v: isinstance(v, dict)),
    "[staff]": _list_of(lambda v: isinstance(v, dict)),
    "[change]": lambda v: isinstance(v, list),
    "[[str, uint, uint]]": _list_of(
        lambda v: isinstance(v, list) and len(v) == 3 and _str(v[0]) and _is_uint(v[1]) and _is_uint(v[2])
    ),
    "{str: str}": _map_of(_str),
    "{str: uint}": _map_of(_is_uint),
}


def read_fields(body: object, fields: tuple[Field, ...], what: str) -> dict[str, object]:
    """The fields of ``body`` named in ``fields``, each checked against its wire type; MalformedError
    naming ``what`` and the field when the body is not a map, a required field is missing, or a field
    has another type. Absent optional fields are absent from the result."""
    if not isinstance(body, dict):
        raise MalformedError(f"{what} is not a map")
    out: dict[str, object] = {}
    for f in fields:
        if f.name not in body:
            if f.required:
                raise MalformedError(f"{what} lacks its {f.name!r}")
            continue
        value = body[f.name]
        if not TYPES[f.type](value):
            raise MalformedError(f"{what}: {f.name!r} must be {f.type}")
        out[f.name] = value
    return out


def below(value: int, cap: int, name: str, what: str) -> int:
    """``value`` when under ``cap``; MalformedError otherwise (counters the hub stores as SQLite ints)."""
    if value >= cap:
        raise MalformedError(f"{what}: {name!r} must be below {cap}")
    return value


class Signed(NamedTuple):
    """A frame just signed, and its header hash (a batch's id; what acks and receipts name)."""

    frame: bytes
    hash: bytes


class Message(Protocol):
    """What every typed body offers: its kind, its field table, and its wire form."""

    KIND: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]]

    def to_wire(self) -> dict[str, object]: ...


def sign_message(
    message: Message,
    *,
    signer: str,
    recipient: str,
    signing_key: Ed25519PrivateKey,
    seal_to: X25519PublicKey | None = None,
    recipient_key: str = "",
    extra_header: Mapping[str, object] | None = None,
    compress_level: int = 6,
) -> Signed:
    """Sign ``message`` as a document of its kind: the frame and its header hash."""
    frame, header_hash = sign_document_hashed(
        message.KIND,
        message.to_wire(),
        signer=signer,
        recipient=recipient,
        signing_key=signing_key,
        seal_to=seal_to,
        recipient_key=recipient_key,
        extra_header=dict(extra_header) if extra_header is not None else None,
        compress_level=compress_level,
    )
    return Signed(frame, header_hash)


__all__ = ["REQUEST_HEADER", "TYPES", "U62", "Field", "Message", "Signed", "below", "read_fields", "sign_message"]
