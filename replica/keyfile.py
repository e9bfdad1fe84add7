"""A replica's private keys on disk: one file, readable only by its owner, made once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.codec import pack, unpack
from protocol.keys import (
    key_id,
    load_sealing_key,
    load_signing_key,
    private_bytes,
    public_bytes,
    sealing_key_from_seed,
    signing_key_from_seed,
)

KEY_FILE = "keys.bin"


@dataclass(frozen=True)
class KeyPair:
    sign: Ed25519PrivateKey
    seal: X25519PrivateKey

    @property
    def sign_pub(self) -> bytes:
        return public_bytes(self.sign)

    @property
    def seal_pub(self) -> bytes:
        return public_bytes(self.seal)

    @property
    def sign_key_id(self) -> str:
        return key_id(self.sign_pub)

    @property
    def seal_key_id(self) -> str:
        return key_id(self.seal_pub)


def create_keys(folder: Path) -> KeyPair:
    """Make fresh keys from the OS's randomness and write them with mode 0600."""
    keys = KeyPair(signing_key_from_seed(os.urandom(32)), sealing_key_from_seed(os.urandom(32)))
    path = folder / KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pack({"sign": private_bytes(keys.sign), "seal": private_bytes(keys.seal)}))
        fh.flush()
        os.fsync(fh.fileno())
    return keys


def replace_keys(folder: Path, keys: KeyPair) -> None:
    """Write new keys in place of the old ones, by rename: a crash leaves one whole file or the other."""
    path = folder / KEY_FILE
    tmp = folder / (KEY_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pack({"sign": private_bytes(keys.sign), "seal": private_bytes(keys.seal)}))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_keys(folder: Path) -> KeyPair:
    raw = unpack((folder / KEY_FILE).read_bytes())
    if not isinstance(raw, dict) or not isinstance(raw.get("sign"), bytes) or not isinstance(raw.get("seal"), bytes):
        raise ValueError(
            f"{folder / KEY_FILE} 不是 Sanji 密钥文件（可能已损坏）：请从本文件夹的备份中恢复 (not a Sanji key file)"
        )
    return KeyPair(load_signing_key(raw["sign"]), load_sealing_key(raw["seal"]))
