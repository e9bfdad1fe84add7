"""The body of a `catalogue` document: one signed release of the district's catalogue.

The catalogue itself (items, materials, calendar) is checked by ``sync/catalogue.py``; this module
only says what the release around it holds. A release is addressed to everyone (`"*"`), never sealed,
and names its `version` in the signed header too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocol.wire import Field, read_fields


@dataclass(frozen=True)
class Release:
    """Body of a `catalogue` document (hub -> `"*"`)."""

    KIND: ClassVar[str] = "catalogue"
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("version", "uint"),
        Field("issued_at", "str", required=False),
        Field("expires_at", "str", required=False),
        Field("catalogue", "map"),
    )

    version: int  # only ever goes up; a station refuses a lower one
    issued_at: str  # ISO 8601, or "" when not said
    expires_at: str
    catalogue: dict[str, object]  # sync.catalogue's document form

    @property
    def header(self) -> dict[str, object]:
        """The signed header extra a release carries."""
        return {"version": self.version}

    def to_wire(self) -> dict[str, object]:
        return {
            "version": self.version,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "catalogue": self.catalogue,
        }

    @classmethod
    def from_wire(cls, body: object) -> Release:
        f = read_fields(body, cls.FIELDS, "a catalogue release")
        catalogue = f["catalogue"]
        assert isinstance(catalogue, dict)
        return cls(int(str(f["version"])), str(f.get("issued_at", "")), str(f.get("expires_at", "")), catalogue)


__all__ = ["Release"]
