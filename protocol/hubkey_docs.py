"""The bodies of the hub's key documents (`hub-keys`, `hub-root`) and the key history that carries them.

``protocol/hubkeys.py`` says what they mean and walks a history; this module only says what they hold.
The history (`KeyBundle`) is the `/v1/keys` answer, the `keys` of an enrolment answer, and, after
`SJK1`, a key file on a stick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocol.wire import Field, read_fields

ROOT_KIND = "hub-root"
KEYS_KIND = "hub-keys"


@dataclass(frozen=True)
class KeysDoc:
    """Body of a `hub-keys` document (signed by the root): the hub's current online keys."""

    KIND: ClassVar[str] = KEYS_KIND
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("hub_id", "str"),
        Field("version", "uint"),
        Field("root", "bin32"),
        Field("sign", "bin32"),
        Field("seal", "bin32"),
        Field("issued_ms", "uint"),
        Field("expires_ms", "uint"),
    )

    hub_id: str
    version: int  # only ever goes up
    root: bytes  # the root key that signs this list
    sign: bytes  # the online Ed25519 signing key
    seal: bytes  # the X25519 sealing key
    issued_ms: int
    expires_ms: int

    def to_wire(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in self.FIELDS}

    @classmethod
    def from_wire(cls, body: object) -> KeysDoc:
        return cls(**read_fields(body, cls.FIELDS, "a hub-keys list"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class RootChange:
    """Body of a `hub-root` document (signed by `prev`): the root that follows `prev`."""

    KIND: ClassVar[str] = ROOT_KIND
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("hub_id", "str"),
        Field("seq", "uint"),
        Field("prev", "bin32"),
        Field("root", "bin32"),
    )

    hub_id: str
    seq: int
    prev: bytes
    root: bytes

    def to_wire(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in self.FIELDS}

    @classmethod
    def from_wire(cls, body: object) -> RootChange:
        return cls(**read_fields(body, cls.FIELDS, "a hub-root change"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class KeyBundle:
    """The hub's key history (`GET /v1/keys`, a key file, an enrolment answer's `keys`): the roots a
    station may start from, the `hub-root` and `hub-keys` documents in order, and the current release."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("hub_id", "str", required=False),
        Field("version", "uint", required=False),
        Field("roots", "[bin32]", required=False),
        Field("docs", "[frame]"),
        Field("release", "frame or nil", required=False),
    )

    hub_id: str
    version: int
    roots: tuple[bytes, ...]
    docs: tuple[bytes, ...]
    release: bytes | None = None

    def to_wire(self) -> dict[str, object]:
        return {
            "hub_id": self.hub_id,
            "version": self.version,
            "roots": list(self.roots),
            "docs": list(self.docs),
            "release": self.release,
        }

    @classmethod
    def from_wire(cls, body: object) -> KeyBundle:
        f = read_fields(body, cls.FIELDS, "the hub's key history")
        roots, docs, release = f.get("roots", []), f["docs"], f.get("release")
        assert isinstance(roots, list) and isinstance(docs, list)
        return cls(
            str(f.get("hub_id", "")),
            int(str(f.get("version", 0))),
            tuple(roots),
            tuple(docs),
            release if isinstance(release, bytes) else None,
        )


__all__ = ["KEYS_KIND", "ROOT_KIND", "KeyBundle", "KeysDoc", "RootChange"]
