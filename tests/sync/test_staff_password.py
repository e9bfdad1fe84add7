"""The staff password hash and grant key shared by hub and station (issue 16): the hub's existing
format, checked offline, and strict about hashes that arrive from a feed or an edited database."""

from __future__ import annotations

import base64

import pytest

from hub.passwords import check_password as hub_check
from hub.passwords import hash_password as hub_hash
from protocol.keys import public_bytes
from sync.staff_grant import grant_key, grant_private, parse_grant_key
from sync.staff_password import ScryptParams, check_password, hash_password, parse_hash, well_formed

CHEAP = ScryptParams(n=2**10)
SALT = bytes(range(16))


def test_a_hash_checks_its_password_and_no_other() -> None:
    stored = hash_password("正确的密码-1", SALT, CHEAP)
    assert check_password("正确的密码-1", stored)
    assert not check_password("正确的密码-2", stored)
    assert stored.startswith("scrypt$1024$8$1$")


def test_the_format_is_the_hubs_both_ways() -> None:
    # The hub's operator hashes (hub/passwords.py) and these are one format, so accounts the hub makes
    # can be checked at a station and the hub can adopt this module without rehashing anything.
    assert check_password("operator-pass", hub_hash("operator-pass"))
    assert hub_check("staff-pass-1", hash_password("staff-pass-1", SALT))


def test_the_salt_changes_the_hash() -> None:
    assert hash_password("same-password", SALT, CHEAP) != hash_password("same-password", bytes(16), CHEAP)
    with pytest.raises(ValueError):
        hash_password("same-password", b"short", CHEAP)


def _forge(n: int, r: int, p: int, salt: bytes = SALT, digest: bytes = bytes(32)) -> str:
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain-text-password",
        "bcrypt$12$abc",
        "scrypt$16384$8$1$!!!$!!!",
        _forge(2**30, 8, 1),  # would need a terabyte: refused, never attempted
        _forge(1000, 8, 1),  # not a power of two
        _forge(2**14, 64, 1),
        _forge(2**14, 8, 16),
        _forge(2**14, 8, 1, salt=b"tiny"),
        _forge(2**14, 8, 1, digest=b"short"),
    ],
)
def test_a_malformed_or_outrageous_hash_matches_nothing(stored: str) -> None:
    assert not well_formed(stored)
    assert parse_hash(stored) is None
    assert not check_password("anything", stored)


def test_a_grant_key_is_reached_from_the_password_alone() -> None:
    # The hub derives it at add-staff and the station again at the first sign-in: same password and
    # salt, same public key; another password, another key; and it never equals the password's hash.
    made = grant_key("staff-pass-1", SALT, CHEAP)
    assert made == grant_key("staff-pass-1", SALT, CHEAP)
    assert made != grant_key("staff-pass-2", SALT, CHEAP)
    parsed = parse_grant_key(made)
    assert parsed is not None and parsed[0] == CHEAP and parsed[1] == SALT
    assert parsed[2] == public_bytes(grant_private("staff-pass-1", SALT, CHEAP))
    assert made.split("$")[-1] != hash_password("staff-pass-1", SALT, CHEAP).split("$")[-1]
    assert parse_grant_key("scrypt$1024$8$1$AAAA$AAAA") is None
