"""What enrolment carries: the hub's signed `enrol-challenge` and `enrollment` documents, and the
answer (online, or as an `SJE2` file) that wraps the latter with the hub's keys and a MAC.

The proofs and MACs themselves are in ``protocol/enrolment.py``. The document kind keeps the
spelling it has always had on the wire (`enrollment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocol.errors import MalformedError
from protocol.hubkey_docs import KeyBundle
from protocol.wire import Field, read_fields

CHALLENGE_KIND = "enrol-challenge"
ENROLLMENT_KIND = "enrollment"


@dataclass(frozen=True)
class EnrolChallenge:
    """Body of an `enrol-challenge` document (hub -> `"*"`): good for a few minutes, needs no storage."""

    KIND: ClassVar[str] = CHALLENGE_KIND
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("token_id", "str"), Field("nonce", "bin16"), Field("at_ms", "uint"))

    token_id: str  # 16 hex digits: protocol.enrolment.token_id
    nonce: bytes
    at_ms: int  # the hub's clock when it issued the challenge

    def to_wire(self) -> dict[str, object]:
        return {"token_id": self.token_id, "nonce": self.nonce, "at_ms": self.at_ms}

    @classmethod
    def from_wire(cls, body: object) -> EnrolChallenge:
        f = read_fields(body, cls.FIELDS, "an enrolment challenge")
        return cls(str(f["token_id"]), bytes(f["nonce"]), int(str(f["at_ms"])))  # type: ignore[call-overload]


@dataclass(frozen=True)
class ChallengeRequest:
    """`POST /v1/enroll/challenge` (plain msgpack): the token's public id, never the token."""

    FIELDS: ClassVar[tuple[Field, ...]] = (Field("token_id", "str"),)

    token_id: str

    def to_wire(self) -> dict[str, object]:
        return {"token_id": self.token_id}

    @classmethod
    def from_wire(cls, body: object) -> ChallengeRequest:
        return cls(str(read_fields(body, cls.FIELDS, "an enrolment challenge request")["token_id"]))


@dataclass(frozen=True)
class ChallengeAnswer:
    """The answer to `POST /v1/enroll/challenge` (plain msgpack): an `enrol-challenge` document."""

    FIELDS: ClassVar[tuple[Field, ...]] = (Field("challenge", "frame"),)

    challenge: bytes

    def to_wire(self) -> dict[str, object]:
        return {"challenge": self.challenge}

    @classmethod
    def from_wire(cls, body: object) -> ChallengeAnswer:
        return cls(bytes(read_fields(body, cls.FIELDS, "an enrolment challenge")["challenge"]))  # type: ignore[call-overload]


@dataclass(frozen=True)
class EnrolRequest:
    """`POST /v1/enroll` (plain msgpack): the station's keys and its proof that it holds the token
    (protocol.enrolment.enrol_proof over the challenge and these keys)."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("challenge", "frame"),
        Field("sign_pub", "bin32"),
        Field("seal_pub", "bin32"),
        Field("proof", "bin32"),
    )

    challenge: bytes
    sign_pub: bytes
    seal_pub: bytes
    proof: bytes

    def to_wire(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in self.FIELDS}

    @classmethod
    def from_wire(cls, body: object) -> EnrolRequest:
        return cls(**read_fields(body, cls.FIELDS, "an enrolment request"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Enrollment:
    """Body of an `enrollment` document (hub -> station): who the station is, and the hub's keys."""

    KIND: ClassVar[str] = ENROLLMENT_KIND
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("station", "str"),
        Field("name", "str"),
        Field("tier", "str"),
        Field("parent", "str"),
        Field("hub_id", "str"),
        Field("hub_name", "str"),
        Field("hub_url", "str"),
        Field("hub_sign_pub", "bin32"),
        Field("hub_seal_pub", "bin32"),
        Field("hub_root_pub", "bin32"),
        Field("station_sign_pub", "bin"),
        Field("catalogue", "frame or nil"),
    )

    station: str
    name: str
    tier: str
    parent: str  # "" when none
    hub_id: str
    hub_name: str
    hub_url: str
    hub_sign_pub: bytes
    hub_seal_pub: bytes
    hub_root_pub: bytes
    station_sign_pub: bytes  # the key the answer is for; empty in an enrolment file
    catalogue: bytes | None  # the current release (a `catalogue` document), if any

    def to_wire(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in self.FIELDS}

    @classmethod
    def from_wire(cls, body: object) -> Enrollment:
        f = read_fields(body, cls.FIELDS, "an enrolment document")
        if len(bytes(f["station_sign_pub"])) not in (0, 32):  # type: ignore[call-overload]
            raise MalformedError("an enrolment document's station_sign_pub is 32 bytes or empty")
        return cls(**f)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EnrolAnswer:
    """The answer to `POST /v1/enroll`, and after `SJE2` an enrolment file (which adds `hub_url` and
    `fingerprint`). `mac` is protocol.enrolment.answer_mac over the challenge and `enrollment`."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("enrollment", "frame"),
        Field("keys", "map"),
        Field("mac", "bin32"),
        Field("hub_url", "str", required=False),
        Field("fingerprint", "str", required=False),
    )

    enrollment: bytes
    keys: KeyBundle
    mac: bytes
    hub_url: str | None = None  # files only
    fingerprint: str | None = None  # files only: the root's, as people read it

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"enrollment": self.enrollment, "mac": self.mac, "keys": self.keys.to_wire()}
        if self.hub_url is not None:
            wire["hub_url"] = self.hub_url
        if self.fingerprint is not None:
            wire["fingerprint"] = self.fingerprint
        return wire

    @classmethod
    def from_wire(cls, body: object) -> EnrolAnswer:
        f = read_fields(body, cls.FIELDS, "an enrolment answer")
        url, fp = f.get("hub_url"), f.get("fingerprint")
        return cls(
            bytes(f["enrollment"]),  # type: ignore[call-overload]
            KeyBundle.from_wire(f["keys"]),
            bytes(f["mac"]),  # type: ignore[call-overload]
            url if isinstance(url, str) else None,
            fp if isinstance(fp, str) else None,
        )


__all__ = [
    "CHALLENGE_KIND",
    "ENROLLMENT_KIND",
    "ChallengeAnswer",
    "ChallengeRequest",
    "EnrolAnswer",
    "EnrolChallenge",
    "EnrolRequest",
    "Enrollment",
]
