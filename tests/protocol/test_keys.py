from __future__ import annotations

import hashlib

import pytest

from protocol.errors import LocalProtocolError, MalformedError
from protocol.keys import (
    is_key_id,
    key_id,
    load_seal_public,
    load_sealing_key,
    load_signing_key,
    load_verify_key,
    private_bytes,
    public_bytes,
    sealing_key_from_seed,
    signing_key_from_seed,
)

SEED = bytes(range(32))


def test_keys_are_deterministic_in_the_seed() -> None:
    a, b = signing_key_from_seed(SEED), signing_key_from_seed(SEED)
    assert public_bytes(a) == public_bytes(b)
    assert public_bytes(sealing_key_from_seed(SEED)) == public_bytes(sealing_key_from_seed(SEED))
    assert public_bytes(a) != public_bytes(signing_key_from_seed(bytes(32)))


def test_raw_round_trips() -> None:
    sign = signing_key_from_seed(SEED)
    seal = sealing_key_from_seed(SEED)
    assert private_bytes(sign) == SEED
    assert public_bytes(load_signing_key(private_bytes(sign))) == public_bytes(sign)
    assert public_bytes(load_sealing_key(private_bytes(seal))) == public_bytes(seal)
    assert public_bytes(load_verify_key(public_bytes(sign))) == public_bytes(sign.public_key())
    assert public_bytes(load_seal_public(public_bytes(seal))) == public_bytes(seal.public_key())
    assert len(public_bytes(sign)) == len(public_bytes(seal)) == 32


def test_key_id_is_hex_of_first_eight_bytes_of_sha256() -> None:
    raw = public_bytes(signing_key_from_seed(SEED))
    assert key_id(raw) == hashlib.sha256(raw).hexdigest()[:16]
    assert is_key_id(key_id(raw))
    assert not is_key_id("ABCDEF0123456789") and not is_key_id("") and not is_key_id(12)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
def test_seeds_must_be_32_bytes(seed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        signing_key_from_seed(seed)
    with pytest.raises(LocalProtocolError):
        sealing_key_from_seed(seed)


def test_bad_public_keys_from_peers_are_malformed() -> None:
    with pytest.raises(MalformedError):
        load_verify_key(bytes(31))
    with pytest.raises(MalformedError):
        load_seal_public(b"x" * 40)


def test_misuse_is_local() -> None:
    with pytest.raises(LocalProtocolError):
        key_id(b"short")
    with pytest.raises(LocalProtocolError):
        public_bytes("not a key")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        private_bytes(signing_key_from_seed(SEED).public_key())  # type: ignore[arg-type]
