"""Signed hub documents (feeds, catalogue releases, receipts, enrolment answers, acks).

They travel in the same frame as batches; only `kind` and the payload differ. A document addressed to
`"*"` is meant for every station (a catalogue release, a revocation list) and opens for anyone who
trusts its signer; it can therefore never be sealed.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from protocol.batch import KIND as BATCH_KIND
from protocol.codec import DEFAULT_LIMITS, Limits
from protocol.errors import LocalProtocolError, ValidationError
from protocol.frame import BROADCAST, UnsealKey, VerifyKey, open_payload, seal_frame_hashed, verify_frame

_BASE_FIELDS = frozenset({"kind", "signer", "recipient", "recipient_key"})


@dataclass(frozen=True)
class Document:
    """An opened, authenticated document. `header` is the full signed header, extras included."""

    kind: str
    signer: str
    header: dict[str, object]
    body: object
    header_hash: bytes

    @property
    def recipient(self) -> str:
        return str(self.header["recipient"])


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or not kind:
        raise LocalProtocolError("a document kind is a non-empty str")
    if kind == BATCH_KIND:
        # Batches carry chain fields that only batch.py checks; they must not pass as documents.
        raise LocalProtocolError("'batch' is not a document kind; use protocol.batch")
    return kind


def sign_document(
    kind: str,
    body: object,
    *,
    signer: str,
    recipient: str,
    signing_key: Ed25519PrivateKey,
    seal_to: X25519PublicKey | None = None,
    recipient_key: str = "",
    extra_header: dict[str, object] | None = None,
    compress_level: int = 6,
) -> bytes:
    """Sign `body` as a `kind` document from `signer` to `recipient` (see `sign_document_hashed`)."""
    return sign_document_hashed(
        kind,
        body,
        signer=signer,
        recipient=recipient,
        signing_key=signing_key,
        seal_to=seal_to,
        recipient_key=recipient_key,
        extra_header=extra_header,
        compress_level=compress_level,
    )[0]


def sign_document_hashed(
    kind: str,
    body: object,
    *,
    signer: str,
    recipient: str,
    signing_key: Ed25519PrivateKey,
    seal_to: X25519PublicKey | None = None,
    recipient_key: str = "",
    extra_header: dict[str, object] | None = None,
    compress_level: int = 6,
) -> tuple[bytes, bytes]:
    """Sign `body` as a `kind` document from `signer` to `recipient` (`"*"` for everyone): the frame
    and its header hash.

    `extra_header` adds kind-specific, signed fields that a receiver can read before opening the body
    (e.g. a catalogue version); they may not reuse a frame field name.
    """
    header: dict[str, object] = {}
    if extra_header is not None:
        if not isinstance(extra_header, dict):
            raise LocalProtocolError("extra_header must be a dict")
        clash = _BASE_FIELDS & extra_header.keys()
        if clash:
            raise LocalProtocolError(f"extra_header may not set frame fields {sorted(clash)}")
        header.update(extra_header)
    header.update(kind=_check_kind(kind), signer=signer, recipient=recipient, recipient_key=recipient_key)
    return seal_frame_hashed(header, body, signing_key=signing_key, seal_to=seal_to, compress_level=compress_level)


def open_document(
    data: bytes,
    *,
    kind: str,
    recipient: str,
    verify_key: VerifyKey,
    unseal_key: UnsealKey | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Document:
    """Verify and open a `kind` document addressed to `recipient` or to everyone (`"*"`).

    A frame of any other kind is refused with `ValidationError` once its signature has been checked.
    """
    _check_kind(kind)
    frame = verify_frame(
        data, recipient=recipient, verify_key=verify_key, max_bytes=limits.max_bytes, allow_broadcast=True
    )
    if frame.kind != kind:
        raise ValidationError(f"expected a {kind!r} document, got a {frame.kind!r} frame")
    if frame.header["recipient"] == BROADCAST and frame.sealed:
        raise ValidationError("a document for everyone ('*') must not be sealed")
    body = open_payload(frame, unseal_key=unseal_key, limits=limits)
    return Document(kind=frame.kind, signer=frame.signer, header=frame.header, body=body, header_hash=frame.header_hash)


__all__ = ["Document", "open_document", "sign_document", "sign_document_hashed"]
