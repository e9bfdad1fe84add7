"""Typed errors, and the root every error Sanji raises on purpose hangs under.

`SanjiError` is that root. Each class has a `default_code`: a short snake_case string that programs,
logs and HTTP bodies match on, and that stays stable across releases even when the wording changes.
An instance's `code` is its class's `default_code` unless the raiser names a more precise one (the
workflow's refusal codes, the admission codes, the ID-number checks): those keep the values they had.

Under the root, two branches of the protocol itself, because the two mean opposite things to an
operator: a `LocalProtocolError` is a bug in our own code (we asked the protocol to do something
impossible), a `RemoteProtocolError` is a peer or a file that sent us something we must refuse. Only
the second kind becomes an HTTP 4xx, so it also carries the status.

Every class and its code (`tests/test_error_codes.py` checks this table against the classes):

| class                 | code                   | raised when                                              |
|-----------------------|------------------------|----------------------------------------------------------|
| SanjiError            | error                  | (the root; raised only through a subclass)               |
| LocalProtocolError    | protocol_misuse        | our code asked for something unencodable or unsignable   |
| RemoteProtocolError   | protocol_error         | a peer or file sent something refused (base of the below)|
| MalformedError        | malformed              | bytes that are not a well-formed Sanji object            |
| TooLargeError         | too_large              | a size, length or nesting limit is exceeded              |
| UnsupportedError      | unsupported_version    | a format version or codec this build does not speak      |
| UnknownKeyError       | unknown_key            | signed or sealed with a key we do not hold or trust      |
| SignatureError        | bad_signature          | the signature does not cover the header                  |
| WrongRecipientError   | wrong_recipient        | authentic, but addressed to someone else                 |
| DigestError           | body_digest_mismatch   | the body is not the one the header describes             |
| DecryptError          | decrypt_failed         | a sealed body cannot be opened                           |
| ValidationError       | invalid                | well-formed and authentic, but breaks a rule             |
| KeyChainError         | bad_key_chain          | the hub's key history leads nowhere we trust             |
| ModelError            | invalid_change         | a change names an entity, field or value not in the model|
| CalendarError         | invalid_calendar       | a release's calendar data is malformed                   |
| CatalogueError        | invalid_catalogue      | a catalogue document that must not be published or loaded|
| AcceptanceError       | not_acceptable         | an application the station must not accept as entered   |
| TransitionError       | transition_refused     | a move the workflow does not allow (1)                   |
| InspectionError       | invalid_inspection     | inspection input an inspector or operator must correct   |
| StaffRuleError        | bad_staff_account      | a staff account's name or password no rule allows (1)   |
| ReconcileError        | malformed_reconcile    | a reconciliation message that is malformed or out of turn|
| InvalidIdentity       | invalid_identity       | an ID or phone number that cannot be right (1)           |
| Refused               | refused                | bad input or a disallowed action: CLI exit 2 (1)         |
| Unreachable           | unreachable            | the hub could not be reached: CLI exit 3                 |
| NotApplied            | not_applied            | a change was written but did not take effect: CLI exit 1 |
| CarriedFileRefused    | carried_file_refused   | a file on a stick that was not read (1)                  |
| BlobError             | invalid_blob           | a blob that cannot be stored                             |
| AnswerTooLarge        | too_large              | a hub answer over the station's cap (2)                  |
| NotAHub               | not_a_hub              | the hub's address answers with something else            |
| FeedGap               | feed_gap               | a feed page that starts after what the station applied   |
| SyncBusy              | sync_busy              | another sync round holds the station's lock              |
| RevokedError          | revoked                | a batch or request from a revoked station                |
| UnsealedError         | unsealed               | an unsealed batch where stations always seal             |
| EnrolmentError        | enrolment_refused      | an enrolment the hub refuses                             |
| TamperedError         | tampered               | a blob that is not what its name says                    |
| UnreferencedError     | unreferenced           | a blob no report at the hub names                        |
| StoreError            | store_failed           | the hub's database failed (damaged, full, a constraint)  |

(1) Instances name a more precise code: the workflow's `terminal`, `not_allowed`, `immediate_only`;
the ID checks' `id_checksum`, `phone_format`, ...; a refusal's own (`stale`, the admission codes, ...);
a carried file's `symlink`, `not_a_file`, ...; a staff rule's `bad_user`, `password_too_short`.
(2) TooLargeError's code: the same failure, met by a station reading a hub's answer.

The errors of `sync/` and `replica/blobstore.py` are also `ValueError`s: callers caught them as such
before they joined this root, and some still do.
"""

from __future__ import annotations

from typing import ClassVar


class SanjiError(Exception):
    """Root of every error Sanji raises on purpose. ``code`` is stable; ``str(err)`` is for people."""

    default_code: ClassVar[str] = "error"

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        self.code: str = self.default_code if code is None else code


class LocalProtocolError(SanjiError):
    """We misused the protocol: an argument or value that can never be encoded or signed."""

    default_code = "protocol_misuse"


class RemoteProtocolError(SanjiError):
    """A peer (or a carried file) sent something that must be refused.

    `str(err)` is the human sentence; `code` is what programs and logs match on, and stays stable
    across releases even when the wording changes.
    """

    default_status: ClassVar[int] = 400
    default_code: ClassVar[str] = "protocol_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.message = message
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
