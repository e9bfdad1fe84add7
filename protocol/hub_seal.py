"""A change's personal values sealed to the hub (issue 16): the ``hub_seal`` a station stores beside
a change whose fields it keeps sealed at rest, and sends as the change's tenth wire element.

The station seals ``{field: plaintext}`` once, when it writes the change (someone is signed in then),
so building a batch later, unattended, never needs the station's data key. HPKE with the batches'
suite (``protocol/frame.py``), to the hub's X25519 sealing key named by its key id; ``info`` binds
origin, entity and record id. Not epoch, seq or HLC: a re-issue under a new epoch
(``node/epoch.py``) restamps those and must send the same seal.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocol.codec import pack, unpack
from protocol.errors import DecryptError, MalformedError

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
MAX_SEAL_BYTES = 64 * 1024


def _info(origin: str, entity: str, rec_id: str, key: str) -> bytes:
    return b"sanji-hub-seal/1|" + pack([origin, entity, rec_id, key])


def seal_values(
    values: dict[str, str], public: X25519PublicKey, key: str, *, origin: str, entity: str, rec_id: str
) -> list[object]:
    """The wire form ``[key id, ciphertext]`` of ``values`` sealed to the hub's key ``key``."""
    return [key, _SUITE.encrypt(pack(values), public, info=_info(origin, entity, rec_id, key))]


def open_values(
    sealed: object, private: X25519PrivateKey, key: str, *, origin: str, entity: str, rec_id: str
) -> dict[str, str]:
    """The plaintext values of a ``hub_seal``; ``DecryptError``/``MalformedError`` when it is not one
    sealed to ``key`` for this origin and record."""
    if not (isinstance(sealed, list) and len(sealed) == 2 and isinstance(sealed[0], str)):
        raise MalformedError("a hub seal is [key id, ciphertext]")
    if not isinstance(sealed[1], bytes) or len(sealed[1]) > MAX_SEAL_BYTES:
        raise MalformedError("a hub seal's ciphertext is bytes of bounded size")
    if sealed[0] != key:
        raise DecryptError(f"sealed to key {sealed[0]!r}, not to the hub's current key")
    try:
        plain = _SUITE.decrypt(sealed[1], private, info=_info(origin, entity, rec_id, key))
    except MemoryError:
        raise
    except Exception as exc:
        raise DecryptError("the hub seal does not open with the hub's key for this record") from exc
    values = unpack(plain)
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise MalformedError("a hub seal holds a map of field names to text")
    return {str(k): str(v) for k, v in values.items()}
