"""The dashboard's operator passwords use the stations' hash code (sync/staff_password.py) and keep the
format the hub wrote before: a hash made the old way checks with the new code, a new hash checks the
old way, and a stored hash naming an outrageous cost matches nothing instead of running it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from hub.passwords import MIN_LENGTH, check_password, hash_password

# No backend here: these are pure functions over a stored string; where the string is stored (an
# operator account on either backend) is the store contract's (test_store_contract.py, operators).


def old_hash(password: str) -> str:
    """What hub/passwords.py wrote before it used sync/staff_password.py, kept here verbatim."""
    n, r, p = 2**14, 8, 1
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def old_check(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    assert scheme == "scrypt"
    got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got, base64.b64decode(digest))


def test_an_operator_hash_stored_before_still_checks() -> None:
    stored = old_hash("operator-口令-1")
    assert check_password("operator-口令-1", stored)
    assert not check_password("operator-口令-2", stored)


def test_a_new_hash_is_the_old_format() -> None:
    stored = hash_password("operator-口令-1")
    assert stored.startswith("scrypt$16384$8$1$")
    assert old_check("operator-口令-1", stored) and not old_check("other-password", stored)
    assert hash_password("operator-口令-1") != stored, "a fresh salt each time"


def test_a_hash_naming_a_huge_cost_matches_nothing() -> None:
    salt, digest = base64.b64encode(bytes(16)).decode(), base64.b64encode(bytes(32)).decode()
    assert not check_password("anything-at-all", f"scrypt${2**30}$8$1${salt}${digest}")
    assert not check_password("anything-at-all", "not a hash")


def test_the_shortest_password_is_the_stations_too() -> None:
    assert MIN_LENGTH == 8
