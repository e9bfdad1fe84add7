"""Change batches: one origin's contiguous run of changes, in a signed (optionally sealed) frame.

A batch names its place in the origin's chain (`epoch`, `first_seq..last_seq`, `prev`) in the signed
header, so the hub can classify it as new, duplicate, gap or fork, and name its file, before it
decrypts or decodes a single change. Changes themselves are opaque here; sync/ gives them meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from protocol.codec import DEFAULT_LIMITS, Limits
from protocol.errors import LocalProtocolError, MalformedError, ValidationError
from protocol.frame import (
    BROADCAST,
    UnsealKey,
    VerifiedFrame,
    VerifyKey,
    open_payload,
    seal_frame_hashed,
    verify_frame,
)
from protocol.keys import is_key_id, key_id, public_bytes

KIND = "batch"
ZERO_HASH = bytes(32)
FILE_SUFFIX = ".sjb"
MAX_ORIGIN_LEN = 64
_UINT_LIMIT = 2**63

_FRAME_FIELDS = frozenset(
    {"v", "kind", "codec", "sealed", "body_sha256", "signer", "signer_key", "recipient", "recipient_key"}
)
_BATCH_FIELDS = frozenset({"origin", "epoch", "first_seq", "last_seq", "count", "prev", "hlc", "horizon"})
_ALLOWED_FIELDS = _FRAME_FIELDS | _BATCH_FIELDS

# Origins become file names; "_" separates the parts of a name and "/" or ".." would escape a folder.
_ORIGIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


def is_origin(value: object) -> bool:
    """Whether `value` can name a batch origin: 1-64 of [A-Za-z0-9.-], starting alphanumeric."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ORIGIN_LEN
        and value[0].isascii()
        and value[0].isalnum()
        and all(c in _ORIGIN_CHARS for c in value)
    )


_T = TypeVar("_T")


def _typed(header: Mapping[str, object], name: str, kind: type[_T]) -> _T:
    value = header.get(name)
    # `type(...) is` keeps a bool from passing as an int; isinstance narrows the type for mypy.
    if type(value) is not kind or not isinstance(value, kind):
        raise MalformedError(f"batch header field {name!r} is missing or not a {kind.__name__}")
    return value


def _horizon(header: Mapping[str, object]) -> tuple[int, int] | None:
    if "horizon" not in header:
        return None
    value = header["horizon"]
    if not isinstance(value, list) or len(value) != 2 or not all(type(v) is int for v in value):
        raise MalformedError("batch header field 'horizon' is not a list of two integers")
    return (int(value[0]), int(value[1]))


def _is_uint(value: object, minimum: int) -> bool:
    return type(value) is int and minimum <= value < _UINT_LIMIT


@dataclass(frozen=True)
class BatchHeader:
    """The batch-specific view of a batch frame's header, with every field checked."""

    origin: str
    epoch: int
    first_seq: int
    last_seq: int
    count: int
    prev: bytes
    recipient: str
    recipient_key: str
    hlc: int
    sealed: bool
    signer_key: str
    # Optional (seq, feed): the origin's changes after ``seq`` (this epoch) were written having applied
    # its feed up to position ``feed``. The hub uses it to tell a concurrent write from one that
    # contradicts a decision its author had already received (sync/admission.py).
    horizon: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem is not None:
            raise ValidationError(f"batch header: {problem}")

    def _problem(self) -> str | None:
        if not is_origin(self.origin):
            return f"origin {self.origin!r} is not 1-64 characters of letters, digits, '-' and '.'"
        if not _is_uint(self.epoch, 1):
            return f"epoch {self.epoch!r} is not a positive integer"
        if not _is_uint(self.first_seq, 1):
            return f"first_seq {self.first_seq!r} is not a positive integer"
        if not _is_uint(self.count, 1):
            return f"count {self.count!r} is not a positive integer"
        if not _is_uint(self.last_seq, 1) or self.last_seq != self.first_seq + self.count - 1:
            return f"last_seq {self.last_seq!r} is not first_seq + count - 1"
        if type(self.prev) is not bytes or len(self.prev) != len(ZERO_HASH):
            return "prev is not a 32-byte hash"
        if not isinstance(self.recipient, str) or not self.recipient or self.recipient == BROADCAST:
            return f"recipient {self.recipient!r} does not name one hub"
        if type(self.sealed) is not bool:
            return "sealed is not a boolean"
        if self.sealed and not is_key_id(self.recipient_key):
            return "a sealed batch must name the recipient's key id"
        if not self.sealed and self.recipient_key != "":
            return "an unsealed batch must have an empty recipient_key"
        if not _is_uint(self.hlc, 0):
            return f"hlc {self.hlc!r} is not a non-negative integer"
        if not is_key_id(self.signer_key):
            return "signer_key is not a key id"
        if self.horizon is not None and not (
            len(self.horizon) == 2 and _is_uint(self.horizon[0], 0) and _is_uint(self.horizon[1], 0)
        ):
            return "horizon is not [seq, feed] of non-negative integers"
        return None

    @classmethod
    def from_header(cls, header: Mapping[str, object]) -> BatchHeader:
        """Parse a decoded frame header. Wrong types are `MalformedError`, wrong values `ValidationError`."""
        if header.get("kind") != KIND:
            raise ValidationError(f"expected a batch, got a {header.get('kind')!r} frame")
        unknown = header.keys() - _ALLOWED_FIELDS
        if unknown:
            raise ValidationError(f"batch header has unknown fields {sorted(unknown)}")
        parsed = cls(
            origin=_typed(header, "origin", str),
            epoch=_typed(header, "epoch", int),
            first_seq=_typed(header, "first_seq", int),
            last_seq=_typed(header, "last_seq", int),
            count=_typed(header, "count", int),
            prev=_typed(header, "prev", bytes),
            recipient=_typed(header, "recipient", str),
            recipient_key=_typed(header, "recipient_key", str),
            hlc=_typed(header, "hlc", int),
            sealed=_typed(header, "sealed", bool),
            signer_key=_typed(header, "signer_key", str),
            horizon=_horizon(header),
        )
        if header.get("signer") != parsed.origin:
            raise ValidationError(
                f"batch from origin {parsed.origin!r} is signed by {header.get('signer')!r}; "
                "only an origin may sign its own batches"
            )
        return parsed

    @property
    def filename(self) -> str:
        return batch_filename(self)


@dataclass(frozen=True)
class VerifiedBatch:
    """A batch frame that passed `verify_batch`: authentic, addressed to us, body intact, header valid."""

    frame: VerifiedFrame
    header: BatchHeader

    @property
    def batch_hash(self) -> bytes:
        """The batch's id: SHA-256 of its signed header bytes (what the next batch's `prev` holds)."""
        return self.frame.header_hash


def batch_filename(header: BatchHeader) -> str:
    """`{origin}_{epoch}_{first_seq:010d}-{last_seq:010d}.sjb`; zero padding keeps files in seq order."""
    return span_filename(header.origin, header.epoch, header.first_seq, header.last_seq)


def span_filename(origin: str, epoch: int, first_seq: int, last_seq: int) -> str:
    """`batch_filename` from the span alone, for a sender that knows what it signed."""
    return f"{origin}_{epoch}_{first_seq:010d}-{last_seq:010d}{FILE_SUFFIX}"


def build_batch(
    *,
    origin: str,
    epoch: int,
    first_seq: int,
    changes: list[object],
    prev: bytes,
    recipient: str,
    hlc: int,
    signing_key: Ed25519PrivateKey,
    seal_to: X25519PublicKey | None = None,
    recipient_key: str = "",
    compress_level: int = 6,
    horizon: tuple[int, int] | None = None,
) -> bytes:
    """`build_batch_hashed` without the hash."""
    return build_batch_hashed(
        origin=origin,
        epoch=epoch,
        first_seq=first_seq,
        changes=changes,
        prev=prev,
        recipient=recipient,
        hlc=hlc,
        signing_key=signing_key,
        seal_to=seal_to,
        recipient_key=recipient_key,
        compress_level=compress_level,
        horizon=horizon,
    )[0]


def build_batch_hashed(
    *,
    origin: str,
    epoch: int,
    first_seq: int,
    changes: list[object],
    prev: bytes,
    recipient: str,
    hlc: int,
    signing_key: Ed25519PrivateKey,
    seal_to: X25519PublicKey | None = None,
    recipient_key: str = "",
    compress_level: int = 6,
    horizon: tuple[int, int] | None = None,
) -> tuple[bytes, bytes]:
    """Sign (and, given `seal_to`, seal) `changes` as one batch frame from `origin` to `recipient`:
    the frame and its header hash (the batch's id, the next batch's `prev`).

    `recipient_key` may be left empty when sealing; it is then the key id of `seal_to`.
    """
    if not isinstance(changes, list) or not changes:
        raise LocalProtocolError("a batch needs a non-empty list of changes")
    if not isinstance(signing_key, Ed25519PrivateKey):
        raise LocalProtocolError("signing_key must be an Ed25519PrivateKey")
    if seal_to is not None and recipient_key == "" and isinstance(seal_to, X25519PublicKey):
        recipient_key = key_id(public_bytes(seal_to))
    count = len(changes)
    last_seq = first_seq + count - 1 if type(first_seq) is int else first_seq
    # Apply the receiver's rules first, so a bad argument is our bug here and not a refusal later.
    try:
        BatchHeader(
            origin=origin,
            epoch=epoch,
            first_seq=first_seq,
            last_seq=last_seq,
            count=count,
            prev=prev,
            recipient=recipient,
            recipient_key=recipient_key,
            hlc=hlc,
            sealed=seal_to is not None,
            signer_key=key_id(public_bytes(signing_key)),
            horizon=horizon,
        )
    except ValidationError as exc:
        raise LocalProtocolError(f"invalid batch arguments: {exc}") from exc
    header: dict[str, object] = {
        "kind": KIND,
        "signer": origin,
        "recipient": recipient,
        "recipient_key": recipient_key,
        "origin": origin,
        "epoch": epoch,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "count": count,
        "prev": prev,
        "hlc": hlc,
    }
    if horizon is not None:
        header["horizon"] = list(horizon)
    return seal_frame_hashed(header, changes, signing_key=signing_key, seal_to=seal_to, compress_level=compress_level)


def verify_batch(
    data: bytes,
    *,
    recipient: str,
    verify_key: VerifyKey,
    max_bytes: int = DEFAULT_LIMITS.max_bytes,
) -> VerifiedBatch:
    """Authenticate a batch frame for hub `recipient` and validate its header; the changes stay closed."""
    frame = verify_frame(data, recipient=recipient, verify_key=verify_key, max_bytes=max_bytes)
    return VerifiedBatch(frame=frame, header=BatchHeader.from_header(frame.header))


def open_batch_changes(
    vb: VerifiedBatch,
    *,
    unseal_key: UnsealKey | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[object]:
    """Decrypt and decode a verified batch's changes, checking there are exactly `count` of them."""
    if not isinstance(vb, VerifiedBatch):
        raise LocalProtocolError("open_batch_changes takes the VerifiedBatch that verify_batch returned")
    payload = open_payload(vb.frame, unseal_key=unseal_key, limits=limits)
    if not isinstance(payload, list):
        raise MalformedError("a batch body must be an array of changes")
    if len(payload) != vb.header.count:
        raise ValidationError(f"batch header says {vb.header.count} changes but the body holds {len(payload)}")
    return payload


__all__ = [
    "ZERO_HASH",
    "BatchHeader",
    "VerifiedBatch",
    "batch_filename",
    "build_batch",
    "build_batch_hashed",
    "is_origin",
    "open_batch_changes",
    "span_filename",
    "verify_batch",
]
