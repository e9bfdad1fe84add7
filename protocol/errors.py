"""Typed errors for everything that crosses a replica boundary.

Two branches, because the two mean opposite things to an operator: a `LocalProtocolError` is a bug in
our own code (we asked the protocol to do something impossible), a `RemoteProtocolError` is a peer or
a file that sent us something we must refuse. Only the second kind becomes an HTTP 4xx, so it carries
the status and a short, stable machine code next to the human sentence.
"""

from __future__ import annotations

from typing import ClassVar


class SanjiError(Exception):
    """Root of every error Sanji raises on purpose."""


class LocalProtocolError(SanjiError):
    """We misused the protocol: an argument or value that can never be encoded or signed."""


class RemoteProtocolError(SanjiError):
    """A peer (or a carried file) sent something that must be refused.

    `str(err)` is the human sentence; `code` is what programs and logs match on, and stays stable
    across releases even when the wording changes.
    """

    default_status: ClassVar[int] = 400
    default_code: ClassVar[str] = "protocol_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code: str = self.default_code if code is None else code
        self.status: int = self.default_status if status is None else status

    def to_dict(self) -> dict[str, object]:
        """The shape an HTTP error body or a rejection record takes."""
        return {"error": self.code, "status": self.status, "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, status={self.status})"


class MalformedError(RemoteProtocolError):
    """The bytes are not a well-formed Sanji object."""

    default_status = 400
    default_code = "malformed"


class TooLargeError(RemoteProtocolError):
    """Something exceeds a size, length or nesting limit."""

    default_status = 413
    default_code = "too_large"


class UnsupportedError(RemoteProtocolError):
    """A format version or codec this build does not speak."""

    default_status = 400
    default_code = "unsupported_version"


class UnknownKeyError(RemoteProtocolError):
    """Signed or sealed with a key we do not hold or do not trust."""

    default_status = 403
    default_code = "unknown_key"


class SignatureError(RemoteProtocolError):
    """The signature does not match the header it claims to cover."""

    default_status = 403
    default_code = "bad_signature"


class WrongRecipientError(RemoteProtocolError):
    """Authentic, but addressed to someone else."""

    default_status = 403
    default_code = "wrong_recipient"


class DigestError(RemoteProtocolError):
    """The body is not the one the signed header describes."""

    default_status = 400
    default_code = "body_digest_mismatch"


class DecryptError(RemoteProtocolError):
    """A sealed body could not be opened with the key and context it names."""

    default_status = 400
    default_code = "decrypt_failed"


class ValidationError(RemoteProtocolError):
    """Well-formed and authentic, but the content breaks a rule."""

    default_status = 422
    default_code = "invalid"


__all__ = [
    "DecryptError",
    "DigestError",
    "LocalProtocolError",
    "MalformedError",
    "RemoteProtocolError",
    "SanjiError",
    "SignatureError",
    "TooLargeError",
    "UnknownKeyError",
    "UnsupportedError",
    "ValidationError",
    "WrongRecipientError",
]
