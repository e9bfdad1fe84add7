"""The hub's key history (protocol/hubkeys.py) and the enrolment token (protocol/enrolment.py): pure."""

from __future__ import annotations

import hashlib

import pytest

from protocol.enrolment import make_token, parse_token
from protocol.errors import MalformedError, SignatureError
from protocol.hubkeys import KeyChainError, check_current, fingerprint, follow, sign_key_list, sign_root_change
from protocol.keys import public_bytes, signing_key_from_seed

HUB = "360802"
DAY = 86_400_000


def key(n: int):  # type: ignore[no-untyped-def]
    return signing_key_from_seed(hashlib.sha256(b"k" + bytes([n])).digest())


def listed(root: int, version: int, sign: int, *, expires: int = 400 * DAY) -> bytes:
    return sign_key_list(
        key(root),
        hub_id=HUB,
        version=version,
        sign=public_bytes(key(sign)),
        seal=bytes(32),
        issued_ms=0,
        expires_ms=expires,
    )


def test_a_station_follows_key_and_root_rotations_in_order() -> None:
    r1, r2 = key(1), key(2)
    history = [
        listed(1, 1, 10),
        listed(1, 2, 11),
        sign_root_change(r1, public_bytes(r2), hub_id=HUB, seq=1),
        listed(2, 3, 11),
        listed(2, 4, 12),
    ]
    root, keys = follow(history, hub_id=HUB, anchor=public_bytes(r1))
    assert root == public_bytes(r2) and keys is not None
    assert (keys.version, keys.sign) == (4, public_bytes(key(12)))
    # From any point: a station that had list 2 still ends on list 4 under the new root.
    assert follow(history, hub_id=HUB, anchor=public_bytes(r1), version=2)[1] == keys
    # Nothing newer: no list, and the root is unchanged.
    assert follow(history[:2], hub_id=HUB, anchor=public_bytes(r1), version=2) == (public_bytes(r1), None)


def test_lists_off_the_path_or_older_are_not_trusted() -> None:
    rogue = [listed(9, 99, 13), sign_root_change(key(9), public_bytes(key(8)), hub_id=HUB, seq=1)]
    root, keys = follow([*rogue, listed(1, 1, 10)], hub_id=HUB, anchor=public_bytes(key(1)), version=0)
    assert root == public_bytes(key(1)) and keys is not None and keys.version == 1
    # A replayed older list never takes a station back (rollback).
    assert follow([listed(1, 1, 10)], hub_id=HUB, anchor=public_bytes(key(1)), version=3)[1] is None


def test_a_damaged_document_on_the_path_refuses_the_history() -> None:
    doc = bytearray(listed(1, 2, 11))
    doc[-5] ^= 1  # inside the signature
    with pytest.raises(SignatureError):
        follow([bytes(doc)], hub_id=HUB, anchor=public_bytes(key(1)))


def test_a_list_past_its_expiry_is_refused() -> None:
    keys = follow([listed(1, 1, 10, expires=5 * DAY)], hub_id=HUB, anchor=public_bytes(key(1)))[1]
    assert keys is not None
    check_current(keys, 5 * DAY)
    with pytest.raises(KeyChainError, match="过期"):
        check_current(keys, 5 * DAY + 1)


def test_a_token_is_short_carries_the_fingerprint_and_reads_as_typed() -> None:
    root = public_bytes(key(1))
    token = make_token(bytes(range(10)), root)
    text = str(token)
    assert text.startswith("SJT-") and len(text) == 4 + 28 + 6
    assert token.fingerprint_text == fingerprint(root) and fingerprint(root).replace("-", "") in text.replace("-", "")
    assert parse_token(text.lower().replace("-", " ")) == token
    assert parse_token(text.replace("0", "O").replace("1", "l")) == token  # Crockford: O and l read as 0 and 1
    for bad in ("SJT-ABC", "XYZ-" + text[4:], text + "A", text[:-1] + "U"):
        with pytest.raises(MalformedError):
            parse_token(bad)
