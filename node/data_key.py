"""The station's data key, and its copies wrapped under each staff member's password.

Citizens' names, ID numbers, phones and addresses are sealed at rest under one random 32-byte key per
station (``node/sealed_fields.py``). The key itself is never stored in the clear: each staff member
holds a copy wrapped (AES-256-GCM) under a key derived from their own password with scrypt, so only a
person who signs in can unlock it, and a copy of ``node.db`` taken away unlocks nothing.

A wrapped copy is a small canonical-msgpack map that records everything needed to open it again: the
format version, the station and user it was made for, scrypt's N, r and p and the salt (its own per
user, drawn again at every password change), the nonce, and the ciphertext. Recording the cost beside
the copy is what lets the defaults be raised later: an old copy still opens with its own parameters
and is re-wrapped under the new ones at the next password change.

The associated data binds the station code and the user name, so a copy lifted from another station's
database, or from another user's row, never opens here. Such a copy is refused by its recorded labels
first, with the reason staff need ("这个密钥不属于本站"); a copy whose labels were edited to match
fails the AEAD tag and is refused as altered. A copy that opens but whose key is not this station's
(the station keeps a check value of its key, see :func:`key_check`) is refused as foreign too, so data
can never be sealed here under a key the station did not make.

Callers check the password against the account's hash before unwrapping (``node/staff_accounts.py``),
so a failed tag here means the copy was damaged or altered, not that the password was mistyped.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from protocol.codec import pack, unpack
from protocol.errors import SanjiError
from protocol.limits import Limits
from replica.errors import Refused
from sync.staff_password import DEFAULT_PARAMS, SALT_BYTES, ScryptParams

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = 1
ALGORITHM = "A256GCM"
_AAD_TAG = "sanji/data-key/1"
_CHECK_TAG = b"sanji/data-key-check/1|"
# A wrapped copy is about 150 bytes; anything much larger was not written by this module.
_WRAPPED_LIMITS = Limits(max_bytes=1024, max_str=256, max_bin=128, max_array=8, max_map=16, max_depth=2)

TAMPERED = (
    "本站数据密钥的加密副本已损坏或被改动，无法解开；请管理员重新为该账户设置密码以重新授予密钥"
    " (the wrapped data key is damaged or was altered)"
)
FOREIGN = (
    "这个密钥不属于本站（或不属于该用户），不能用来解开本站数据 (this wrapped key belongs to another station or user)"
)


@dataclass(frozen=True)
class WrappedKey:
    """One staff member's copy of the data key, as stored in their account row."""

    station: str
    user: str
    params: ScryptParams
    salt: bytes
    nonce: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        return pack(
            {
                "v": VERSION,
                "alg": ALGORITHM,
                "station": self.station,
                "user": self.user,
                "n": self.params.n,
                "r": self.params.r,
                "p": self.params.p,
                "salt": self.salt,
                "nonce": self.nonce,
                "ct": self.ciphertext,
            }
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> WrappedKey:
        """Read a stored copy; ``Refused`` (``key_tampered``) for anything this module did not write."""
        try:
            doc = unpack(blob, _WRAPPED_LIMITS)
        except SanjiError:
            raise Refused(TAMPERED, code="key_tampered") from None
        if not isinstance(doc, dict) or doc.get("v") != VERSION or doc.get("alg") != ALGORITHM:
            raise Refused(TAMPERED, code="key_tampered")
        station, user = doc.get("station"), doc.get("user")
        n, r, p = doc.get("n"), doc.get("r"), doc.get("p")
        salt, nonce, ct = doc.get("salt"), doc.get("nonce"), doc.get("ct")
        if not (isinstance(station, str) and isinstance(user, str)):
            raise Refused(TAMPERED, code="key_tampered")
        if not (isinstance(n, int) and isinstance(r, int) and isinstance(p, int)):
            raise Refused(TAMPERED, code="key_tampered")
        if not (isinstance(salt, bytes) and isinstance(nonce, bytes) and isinstance(ct, bytes)):
            raise Refused(TAMPERED, code="key_tampered")
        params = ScryptParams(n, r, p)
        # Out-of-bounds cost would make the next sign-in eat the machine's memory: an edited copy.
        if not params.valid() or len(salt) < SALT_BYTES or len(nonce) != NONCE_BYTES or len(ct) != KEY_BYTES + 16:
            raise Refused(TAMPERED, code="key_tampered")
        return cls(station, user, params, salt, nonce, ct)


def new_data_key() -> bytes:
    """A fresh random data key, drawn once per station (at ``node init``, or at the first sign-in of a
    station that had none)."""
    return os.urandom(KEY_BYTES)


def key_check(data_key: bytes, station: str) -> bytes:
    """A value the station keeps to recognise its own key, which reveals nothing of it (HMAC-SHA256
    under the key itself, over a fixed label and the station code)."""
    return hmac.new(data_key, _CHECK_TAG + station.encode("utf-8"), hashlib.sha256).digest()


def _aad(station: str, user: str) -> bytes:
    return pack([_AAD_TAG, station, user])


def _kek(password: str, salt: bytes, params: ScryptParams) -> bytes:
    kdf = Scrypt(salt=salt, length=KEY_BYTES, n=params.n, r=params.r, p=params.p)
    return kdf.derive(password.encode("utf-8"))


def wrap(
    data_key: bytes, password: str, *, station: str, user: str, params: ScryptParams = DEFAULT_PARAMS
) -> WrappedKey:
    """A copy of ``data_key`` that only ``password`` opens, for ``user`` at ``station``. Salt and nonce
    are fresh every time, so re-wrapping after a password change shares nothing with the old copy."""
    if len(data_key) != KEY_BYTES:
        raise ValueError("a data key has 32 bytes")
    if not params.valid():
        raise ValueError(f"scrypt parameters out of bounds: {params}")
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(_kek(password, salt, params)).encrypt(nonce, data_key, _aad(station, user))
    return WrappedKey(station, user, params, salt, nonce, ciphertext)


def unwrap(blob: bytes, password: str, *, station: str, user: str, check: bytes | None) -> bytes:
    """The data key in ``blob``, for ``user`` at ``station``; ``check`` is the station's
    :func:`key_check` (None only before the station has recorded one).

    Refusals (``Refused``): ``foreign_key`` for a copy made for another station or user, or holding
    another key; ``key_tampered`` for a copy that is malformed or whose tag fails.
    """
    wrapped = WrappedKey.from_bytes(blob)
    if wrapped.station != station or wrapped.user != user:
        raise Refused(FOREIGN, code="foreign_key")
    try:
        data_key = AESGCM(_kek(password, wrapped.salt, wrapped.params)).decrypt(
            wrapped.nonce, wrapped.ciphertext, _aad(station, user)
        )
    except InvalidTag:
        raise Refused(TAMPERED, code="key_tampered") from None
    if check is not None and not hmac.compare_digest(key_check(data_key, station), check):
        raise Refused(FOREIGN, code="foreign_key")
    return data_key
