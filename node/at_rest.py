"""Sealing a station's personal values at rest inside its changes and records (issue 16).

Every personal field (``sync/model.PERSONAL``) a station writes is stored in ``changes.fields`` and
``records.state`` as a sealed value (``sync/sealed_value.py``): its mask, and AES-SIV of the padded
plaintext under a key derived (HKDF, ``sanji-at-rest-v1``) from the station's data key, with the
station, entity, record id and field as associated data. Deterministic on purpose: the same plaintext
in the same cell seals to the same bytes, so the fold (``sync/fold.py``) compares sealed values for
equality as it compares plaintext. What determinism gives away: that two changes of one cell wrote
the same value, which the log's order says anyway. Moved to another record or field, a value no
longer opens (``sealed_misplaced``).

The only thing the fold may see differently: an exact (hlc, origin) tie between two *different*
plaintexts (a forked or restored origin), which it breaks by the packed values, orders by the sealed
bytes here and by the plaintext at the hub. The hub is the record of truth; the station's state of
that one field is then cosmetic until a later change.

``seal_change`` runs in ``Station.write`` with the data key of a live ``StaffSession``; it also
computes the change's anti-entropy digest over the plaintext (``changes.digest``) and seals the
plaintext personal values to the hub (``changes.hub_seal``, ``protocol/hub_seal.py``), so a batch is
built later, unattended, with no key at all.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from node.sealed_fields import Sealer
from protocol.codec import pack, pack_map
from protocol.hub_seal import seal_values
from protocol.keys import load_seal_public
from replica.errors import Refused
from sync import sealed_value
from sync.change import Change
from sync.model import PERSONAL
from sync.scope import change_digest

LABEL = b"sanji-at-rest-v1"
PAD_TO = 32
MINIMISED = "（已按规定只保留遮蔽信息）"

DAMAGED = "这条加密的个人信息无法解开（被挪动或改动过），拒绝显示 (a sealed value does not open here)"


def _pad(data: bytes) -> bytes:
    padded = data + b"\x80"  # ISO/IEC 7816-4, as node/sealed_fields.py
    return padded + b"\x00" * (-len(padded) % PAD_TO)


def _unpad(data: bytes) -> bytes | None:
    end = data.rstrip(b"\x00")
    return end[:-1] if end.endswith(b"\x80") else None


def has_data_key(conn: sqlite3.Connection) -> bool:
    """Whether this station seals at rest: it has a data key (``station_key``, issue 16)."""
    return conn.execute("SELECT 1 FROM station_key WHERE id=1").fetchone() is not None


@dataclass(frozen=True)
class Sealed:
    """One written change as the station stores it."""

    fields: dict[str, object]
    digest: bytes | None
    hub_seal: bytes | None


class AtRest:
    """Seals and opens one station's personal values; made from a live session's data key."""

    def __init__(self, data_key: bytes, station: str) -> None:
        if len(data_key) != 32:
            raise ValueError("a data key has 32 bytes")
        self.station = station
        derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=LABEL + b"|" + station.encode())
        self._siv = AESSIV(derived.derive(data_key))

    def __repr__(self) -> str:
        return f"AtRest(station={self.station!r})"

    def _aad(self, entity: str, rec_id: str, name: str) -> list[bytes]:
        return [pack(["sanji-at-rest/1", self.station, entity, rec_id, name])]

    def seal(self, entity: str, rec_id: str, name: str, plaintext: str) -> bytes:
        siv = self._siv.encrypt(_pad(plaintext.encode("utf-8")), self._aad(entity, rec_id, name))
        return sealed_value.encode(sealed_value.mask_for(name, plaintext), siv)

    def open(self, entity: str, rec_id: str, name: str, value: object) -> object:
        """The plaintext of a sealed value (a plain value as it is). A minimised one shows its mask;
        one that does not open here is refused (``sealed_misplaced``)."""
        if not sealed_value.is_sealed(value):
            return value
        assert isinstance(value, bytes)
        mask, siv, _pending = sealed_value.decode(value)
        if siv is None:
            return mask
        try:
            data = _unpad(self._siv.decrypt(siv, self._aad(entity, rec_id, name)))
        except InvalidTag:
            data = None
        if data is None:
            raise Refused(DAMAGED, code="sealed_misplaced")
        return data.decode("utf-8")

    def wrap(self, secret: bytes) -> bytes:
        """A station secret (the at-rest private key) sealed under the data key."""
        return self._siv.encrypt(secret, [b"sanji-at-rest-secret/1|" + self.station.encode()])

    def unwrap(self, blob: bytes) -> bytes:
        try:
            return self._siv.decrypt(blob, [b"sanji-at-rest-secret/1|" + self.station.encode()])
        except InvalidTag:
            raise Refused(DAMAGED, code="sealed_misplaced") from None

    def open_values(self, entity: str, rec_id: str, values: dict[str, object]) -> dict[str, object]:
        return {k: self.open(entity, rec_id, k, v) for k, v in values.items()}


def seal_change(rest: AtRest, change: Change, *, hub_pub: bytes, hub_key: str) -> Sealed:
    """The stored form of a plaintext ``change``: personal values sealed, the plaintext's digest, and
    the plaintext personal values sealed to the hub. A change with no personal value is kept as is."""
    personal = PERSONAL.get(change.entity, frozenset())
    plain = {k: v for k, v in change.fields.items() if k in personal and isinstance(v, str)}
    if not plain:
        return Sealed(dict(change.fields), None, None)
    c = change
    digest = change_digest(
        c.origin, c.epoch, c.seq, c.hlc, c.entity, c.id, pack_map(dict(c.fields)), pack_map(dict(c.base))
    )
    seal = seal_values(plain, load_seal_public(hub_pub), hub_key, origin=c.origin, entity=c.entity, rec_id=c.id)
    fields = dict(c.fields)
    for name, value in plain.items():
        fields[name] = rest.seal(c.entity, c.id, name, value)
    return Sealed(fields, digest, pack(seal))


def touches_personal(change: Change) -> bool:
    personal = PERSONAL.get(change.entity)
    return personal is not None and any(k in personal for k in change.fields)


def write_tokens(conn: sqlite3.Connection, sealer: Sealer, app_id: str, fields: Mapping[str, object]) -> None:
    """The exact-search tokens of an application's ID number and full name (``search_tokens``), from
    the plaintext ``fields`` of a change that writes them."""
    for kind, name, token in (
        ("id", "applicant_id", sealer.id_token),
        ("name", "applicant_name", sealer.name_token),
    ):
        value = fields.get(name)
        if isinstance(value, str) and value:
            conn.execute(
                "INSERT INTO search_tokens (application, kind, token) VALUES (?,?,?)"
                " ON CONFLICT (application, kind) DO UPDATE SET token=excluded.token",
                (app_id, kind, token(value)),
            )


_ID = re.compile(r"^[0-9]{17}[0-9Xx]$")
_NAME = re.compile(r"^(?=.*[^\x00-\x7f])\S{2,20}$")  # a name has a character beyond ASCII


def token_query(sealer: Sealer, q: str) -> tuple[str, bytes] | None:
    """``(kind, token)`` when a search is an 18-character ID number or what may be a full name: those
    are found by keyed token (``search_tokens``); anything else searches the number prefix as before."""
    q = q.strip()
    if _ID.match(q):
        return "id", sealer.id_token(q)
    if _NAME.match(q):
        return "name", sealer.name_token(q)
    return None


def token_matches(conn: sqlite3.Connection, kind: str, token: bytes) -> list[str]:
    rows = conn.execute("SELECT application FROM search_tokens WHERE kind=? AND token=?", (kind, token))
    return [str(r[0]) for r in rows]


def masked(entity: str, values: dict[str, object]) -> dict[str, object]:
    """``values`` as a list shows them with no key: every sealed value by its mask."""
    return {k: sealed_value.mask_of(v) for k, v in values.items()}
