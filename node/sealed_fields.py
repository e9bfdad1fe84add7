"""Citizens' personal data sealed at rest in the station's database, and how it is still found.

An applicant's name, ID number, phone and address are each stored as one AEAD value (AES-256-GCM)
under a sealing key derived (HKDF-SHA256) from the station's data key (``node/data_key.py``): a fresh
random 96-bit nonce per value, and associated data binding the station code, the application id and
the field name. A value copied into another application's row, or from the name column into the
address column, therefore fails its tag and is refused (``sealed_misplaced``) instead of showing the
wrong person's data. Plaintexts are padded to a multiple of 32 bytes before sealing, so a sealed name
does not tell a two-character name from a four-character one by its length.

Nonce budget: random 96-bit nonces under one key stay safe to about 2**32 values; a station seals four
per application, and a busy station takes tens of thousands of applications in ten years.

**Search: keyed hashes, not scanning while unlocked.** Staff look applicants up by exact ID number or
full name. Each sealed applicant also carries two search tokens, HMAC-SHA256 under a search key
derived (HKDF, its own label) from the data key, over the normalised ID number and name. A search
computes the token of what was typed and finds the rows by an index, at any size of database; the
alternative, decrypting every row on each search while unlocked, reads and decrypts the whole table
for every keystroke and grows with ten years of data. The tokens are keyed, not plain hashes, because
ID numbers and names are guessable: a plain SHA-256 of every possible ID number of one district
(36,500 birth dates times 1,000 serials) takes seconds, while the keyed token is useless without the
data key, which a stolen ``node.db`` does not hold. Computing a token needs the data key, so
searching by name or ID needs a signed-in person, as reading the result does anyway. What the tokens
give away: that two rows share an ID number or a name (the same citizen applying twice), which the
station's own staff know anyway.
Prefix and partial search by name is not offered on sealed data; lists keep the masked forms
(``sync/identity.py``: ``向*``, ``360802********7159``, ``138****1234``), which need no key at all,
and the application number, which is not personal, stays searchable by prefix as before.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.codec import pack
from replica.errors import Refused
from sync.identity import mask_id, mask_name, mask_phone

FIELDS = ("name", "id_number", "phone", "address")
VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
PAD_TO = 32
_SEPARATORS = re.compile(r"[\s\-]+")
_SPACES = re.compile(r"\s+")

MISPLACED = (
    "这条加密的个人信息与所在的记录或字段不符（被挪动或改动过），拒绝显示"
    " (a sealed value was moved to another row or field, or altered)"
)
DAMAGED = "这条加密的个人信息已损坏，无法解开 (a sealed value is damaged)"


def _derive(data_key: bytes, label: str, station: str) -> bytes:
    info = f"sanji/{label}/1|{station}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)


def _pad(data: bytes) -> bytes:
    # ISO/IEC 7816-4: one 0x80 then zeros up to the next multiple of PAD_TO, always at least one byte.
    padded = data + b"\x80"
    return padded + b"\x00" * (-len(padded) % PAD_TO)


def _unpad(data: bytes) -> bytes | None:
    end = data.rstrip(b"\x00")
    return end[:-1] if end.endswith(b"\x80") else None


def normalize_id(raw: str) -> str:
    """An ID number as the token sees it: full-width folded (NFKC), separators gone, X upper-case, so
    what staff type finds what was accepted (acceptance stores ``sync.identity.check_id_number``'s
    normal form, which this leaves unchanged)."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()


def normalize_name(raw: str) -> str:
    """A name as the token sees it: NFKC, no spaces (``张 三`` and ``张三`` are one name)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", raw))


@dataclass(frozen=True)
class SealedApplicant:
    """What the station stores for one application's applicant: four sealed values, two search
    tokens, and the masked forms lists show without the key."""

    name: bytes
    id_number: bytes
    phone: bytes
    address: bytes
    id_token: bytes
    name_token: bytes
    name_masked: str
    id_masked: str
    phone_masked: str

    def masked(self) -> tuple[str, str, str]:
        """What a list may show without the key: name, ID number and phone, masked."""
        return self.name_masked, self.id_masked, self.phone_masked


class Sealer:
    """Seals and opens one station's personal fields. Made from the data key a live
    ``StaffSession`` gives out; holds only keys derived from it, one per purpose."""

    def __init__(self, data_key: bytes, station: str) -> None:
        if len(data_key) != 32:
            raise ValueError("a data key has 32 bytes")
        self.station = station
        self._aead = AESGCM(_derive(data_key, "seal-key", station))
        self._search = _derive(data_key, "search-key", station)

    def __repr__(self) -> str:
        return f"Sealer(station={self.station!r})"

    def _aad(self, application: str, field: str) -> bytes:
        if field not in FIELDS:
            raise ValueError(f"not a sealed field: {field!r}")
        if not application:
            raise ValueError("a sealed value belongs to an application id")
        return pack(["sanji/sealed/1", self.station, application, field])

    def seal(self, application: str, field: str, value: str) -> bytes:
        """``value`` sealed for ``field`` of ``application``: version byte, nonce, ciphertext."""
        aad = self._aad(application, field)
        nonce = os.urandom(NONCE_BYTES)
        return bytes([VERSION]) + nonce + self._aead.encrypt(nonce, _pad(value.encode("utf-8")), aad)

    def open(self, application: str, field: str, sealed: bytes) -> str:
        """The value sealed for exactly this application and field; ``Refused`` otherwise."""
        aad = self._aad(application, field)
        if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES + PAD_TO or sealed[0] != VERSION:
            raise Refused(DAMAGED, code="sealed_damaged")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            padded = self._aead.decrypt(nonce, body, aad)
        except InvalidTag:
            raise Refused(MISPLACED, code="sealed_misplaced") from None
        data = _unpad(padded)
        if data is None:  # authentic, so written by a faulty build: still nothing to show
            raise Refused(DAMAGED, code="sealed_damaged")
        return data.decode("utf-8")

    def id_token(self, id_number: str) -> bytes:
        """The search token of an ID number (exact match)."""
        return hmac.new(self._search, b"id\x00" + normalize_id(id_number).encode("utf-8"), hashlib.sha256).digest()

    def name_token(self, name: str) -> bytes:
        """The search token of a full name (exact match)."""
        return hmac.new(self._search, b"name\x00" + normalize_name(name).encode("utf-8"), hashlib.sha256).digest()

    def applicant(self, application: str, *, name: str, id_number: str, phone: str, address: str) -> SealedApplicant:
        """Everything stored for one applicant. Call with the values acceptance has already checked
        and normalised (``sync/identity.py``)."""
        return SealedApplicant(
            name=self.seal(application, "name", name),
            id_number=self.seal(application, "id_number", id_number),
            phone=self.seal(application, "phone", phone),
            address=self.seal(application, "address", address),
            id_token=self.id_token(id_number),
            name_token=self.name_token(name),
            name_masked=mask_name(name),
            id_masked=mask_id(id_number),
            phone_masked=mask_phone(phone),
        )

    def open_applicant(self, application: str, sealed: SealedApplicant) -> dict[str, str]:
        """The four values of one applicant, each checked against its row and field."""
        return {field: self.open(application, field, getattr(sealed, field)) for field in FIELDS}
