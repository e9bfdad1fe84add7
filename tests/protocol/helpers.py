"""Shared keys and a frame forger for the protocol tests."""

from __future__ import annotations

import hashlib

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol import frame as frame_mod
from protocol.batch import ZERO_HASH
from protocol.codec import pack
from protocol.keys import key_id, public_bytes, sealing_key_from_seed, signing_key_from_seed

STATION = "360802-T01-05"
HUB = "hub-360802"
OTHER_HUB = "hub-360803"

STATION_KEY = signing_key_from_seed(bytes(range(32)))
STATION_KID = key_id(public_bytes(STATION_KEY))
HUB_SIGN_KEY = signing_key_from_seed(bytes(range(32, 64)))
HUB_SIGN_KID = key_id(public_bytes(HUB_SIGN_KEY))
HUB_SEAL_KEY = sealing_key_from_seed(bytes(range(64, 96)))
HUB_SEAL_KID = key_id(public_bytes(HUB_SEAL_KEY))
OTHER_SEAL_KEY = sealing_key_from_seed(bytes(range(96, 128)))
STRANGER_KEY = signing_key_from_seed(bytes([7]) * 32)

CHANGES: list[object] = [
    ["360802-T01-05", 1, 1, 7, "application", "a-1", {"status": "accepted", "name": "向桂"}, {}],
    ["360802-T01-05", 1, 2, 8, "application", "a-1", {"m.居民身份证": "submitted"}, {"status": 7}],
    ["360802-T01-05", 1, 3, 9, "event", "e-1", {"kind": "note", "at": 1.5, "blob": b"\x00\x01"}, {}],
]

_TRUSTED: dict[tuple[str, str], Ed25519PublicKey] = {
    (STATION, STATION_KID): STATION_KEY.public_key(),
    (HUB, HUB_SIGN_KID): HUB_SIGN_KEY.public_key(),
}


def trusted(signer: str, signer_key: str) -> Ed25519PublicKey | None:
    return _TRUSTED.get((signer, signer_key))


def nobody(signer: str, signer_key: str) -> Ed25519PublicKey | None:
    return None


def hub_unseal(kid: str) -> X25519PrivateKey | None:
    return HUB_SEAL_KEY if kid == HUB_SEAL_KID else None


def batch_header(**overrides: object) -> dict[str, object]:
    """A complete, valid unsealed batch header for 3 changes; `overrides` replace or add fields."""
    header: dict[str, object] = {
        "v": 1, "kind": "batch", "codec": "zlib", "sealed": False, "body_sha256": bytes(32),
        "signer": STATION, "signer_key": STATION_KID, "recipient": HUB, "recipient_key": "",
        "origin": STATION, "epoch": 1, "first_seq": 1, "last_seq": 3, "count": 3, "prev": ZERO_HASH,
        "hlc": 123,
    }  # fmt: skip
    header.update(overrides)
    return header


def forge(
    header: dict[str, object],
    body: bytes,
    *,
    key: Ed25519PrivateKey = STATION_KEY,
    digest: bool = True,
    header_bytes: bytes | None = None,
    signature: bytes | None = None,
) -> bytes:
    """Assemble a frame by hand, bypassing seal_frame's checks (but signing for real unless told)."""
    if digest:
        header = {**header, "body_sha256": hashlib.sha256(body).digest()}
    hb = pack(header) if header_bytes is None else header_bytes
    sig = frame_mod._sign_header(hb, key) if signature is None else signature
    return frame_mod._encode_frame(hb, body, sig)


def noncanonical_pack(value: object) -> bytes:
    """msgpack without key sorting, to build headers that are valid msgpack but not canonical."""
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out
