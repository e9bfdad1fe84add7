"""Key material: Ed25519 to sign, X25519 to seal, both made from caller-supplied 32-byte seeds.

protocol/ draws no randomness itself, so a caller (node or hub setup) provides the seed bytes and
keeps them; the same seed always gives the same key, which is also what makes test vectors possible.

Loading a *public* key usually means bytes that came from a peer (an enrolment request, a pinned hub
key in a document), so a bad one is a `MalformedError`. Private keys only ever come from our own
storage, so a bad one is a `LocalProtocolError`.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocol.errors import LocalProtocolError, MalformedError

KEY_BYTES = 32
KEY_ID_HEX_LEN = 16

AnyKey = Ed25519PrivateKey | Ed25519PublicKey | X25519PrivateKey | X25519PublicKey
PrivateKey = Ed25519PrivateKey | X25519PrivateKey


def _seed(seed: bytes, what: str) -> bytes:
    if not isinstance(seed, bytes | bytearray) or len(seed) != KEY_BYTES:
        size = len(seed) if isinstance(seed, bytes | bytearray) else type(seed).__name__
        raise LocalProtocolError(f"{what} must be {KEY_BYTES} bytes, got {size}")
    return bytes(seed)


def signing_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 signing key whose RFC 8032 seed is `seed` (32 bytes)."""
    return Ed25519PrivateKey.from_private_bytes(_seed(seed, "an Ed25519 seed"))


def sealing_key_from_seed(seed: bytes) -> X25519PrivateKey:
    """The X25519 key whose raw private scalar is `seed` (32 bytes; clamping happens inside)."""
    return X25519PrivateKey.from_private_bytes(_seed(seed, "an X25519 seed"))


def public_bytes(key: AnyKey) -> bytes:
    """Raw 32-byte public key, for a private or public Ed25519/X25519 key object."""
    if isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        public: Ed25519PublicKey | X25519PublicKey = key.public_key()
    elif isinstance(key, Ed25519PublicKey | X25519PublicKey):
        public = key
    else:
        raise LocalProtocolError(f"not an Ed25519 or X25519 key: {type(key).__name__}")
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_bytes(key: PrivateKey) -> bytes:
    """Raw 32-byte private key (the seed it was made from), for storing it again."""
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise LocalProtocolError(f"not an Ed25519 or X25519 private key: {type(key).__name__}")
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def _public_raw(raw: bytes, what: str) -> bytes:
    if not isinstance(raw, bytes | bytearray) or len(raw) != KEY_BYTES:
        size = len(raw) if isinstance(raw, bytes | bytearray) else type(raw).__name__
        raise MalformedError(f"{what} must be {KEY_BYTES} raw bytes, got {size}")
    return bytes(raw)


def load_verify_key(raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its 32 raw bytes."""
    try:
        return Ed25519PublicKey.from_public_bytes(_public_raw(raw, "an Ed25519 public key"))
    except ValueError as exc:
        raise MalformedError(f"not a valid Ed25519 public key: {exc}") from exc


def load_seal_public(raw: bytes) -> X25519PublicKey:
    """An X25519 public key from its 32 raw bytes."""
    try:
        return X25519PublicKey.from_public_bytes(_public_raw(raw, "an X25519 public key"))
    except ValueError as exc:
        raise MalformedError(f"not a valid X25519 public key: {exc}") from exc


def load_signing_key(raw: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from the 32 bytes `private_bytes` gave."""
    return signing_key_from_seed(raw)


def load_sealing_key(raw: bytes) -> X25519PrivateKey:
    """An X25519 private key from the 32 bytes `private_bytes` gave."""
    return sealing_key_from_seed(raw)


def key_id(public_raw: bytes) -> str:
    """Short stable name for a public key: hex of the first 8 bytes of its SHA-256."""
    if not isinstance(public_raw, bytes | bytearray) or len(public_raw) != KEY_BYTES:
        raise LocalProtocolError("key_id takes the 32 raw bytes of a public key")
    return hashlib.sha256(public_raw).digest()[:8].hex()


def is_key_id(value: object) -> bool:
    """Whether `value` has the shape `key_id` produces (16 lowercase hex digits)."""
    return isinstance(value, str) and len(value) == KEY_ID_HEX_LEN and all(c in "0123456789abcdef" for c in value)


__all__ = [
    "is_key_id",
    "key_id",
    "load_seal_public",
    "load_sealing_key",
    "load_signing_key",
    "load_verify_key",
    "private_bytes",
    "public_bytes",
    "sealing_key_from_seed",
    "signing_key_from_seed",
]
