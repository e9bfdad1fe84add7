"""A staff member's wrapped copy of the data key, when it is not what it should be (issue 16): altered,
damaged, copied from another station or another user, or holding a key that is not this station's.
Each is refused with its own code and a reason staff can act on, and nothing is lost: putting the
right copy back opens everything again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from node import data_key
from node.sealed_fields import Sealer
from protocol.codec import pack, unpack
from replica.errors import Refused
from tests.node.staff_helpers import (
    ADMIN_PASSWORD,
    CHEAP,
    OTHER_STATION,
    STAFF_PASSWORD,
    STATION,
    T0,
    sign_in,
    station,
    with_staff,
    wrapped_key,
)
from tests.node.staff_helpers import set_wrapped_key as put


def _edited(blob: bytes, **changes: object) -> bytes:
    doc = unpack(blob)
    assert isinstance(doc, dict)
    doc.update(changes)
    return pack(doc)


def _refused(db: sqlite_utils.Database, user: str, password: str) -> Refused:
    with pytest.raises(Refused) as e:
        sign_in(db, user, password)
    return e.value


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    made = station(tmp_path / "V")
    with_staff(made)
    return made


def test_an_altered_ciphertext_is_refused_as_tampered_and_the_right_copy_still_works(db: sqlite_utils.Database) -> None:
    good = wrapped_key(db, "zhangsan")
    assert good is not None
    doc = unpack(good)
    assert isinstance(doc, dict) and isinstance(doc["ct"], bytes)
    flipped = bytes([doc["ct"][0] ^ 1]) + doc["ct"][1:]
    put(db, "zhangsan", _edited(good, ct=flipped))
    err = _refused(db, "zhangsan", STAFF_PASSWORD)
    assert err.code == "key_tampered" and str(err).startswith("本站数据密钥的加密副本已损坏或被改动")
    put(db, "zhangsan", good)
    assert sign_in(db, "zhangsan", STAFF_PASSWORD).user == "zhangsan"


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[:-5],  # cut short
        lambda blob: b"\x00" * len(blob),  # overwritten
        lambda blob: _edited(blob, salt=b"\x01" * 16),  # another salt: another key from the password
        lambda blob: _edited(blob, n=2**30),  # a cost that would eat the machine: refused, not tried
        lambda blob: _edited(blob, v=2),
        lambda blob: _edited(blob, nonce=b"short"),
    ],
)
def test_a_damaged_copy_is_refused_as_tampered(db: sqlite_utils.Database, damage: Callable[[bytes], bytes]) -> None:
    good = wrapped_key(db, "zhangsan")
    assert good is not None
    put(db, "zhangsan", damage(good))
    assert _refused(db, "zhangsan", STAFF_PASSWORD).code == "key_tampered"


def test_a_copy_from_another_station_is_not_this_stations_key(tmp_path: Path, db: sqlite_utils.Database) -> None:
    other = station(tmp_path / "W")
    with_staff(other, OTHER_STATION)  # the same user names and passwords, another station
    lifted = wrapped_key(other, "zhangsan")
    assert lifted is not None
    put(db, "zhangsan", lifted)
    err = _refused(db, "zhangsan", STAFF_PASSWORD)
    assert err.code == "foreign_key" and str(err).startswith("这个密钥不属于本站")
    # Relabelled to look like ours, it no longer opens at all.
    put(db, "zhangsan", _edited(lifted, station=STATION))
    assert _refused(db, "zhangsan", STAFF_PASSWORD).code == "key_tampered"


def test_another_users_copy_does_not_open_for_this_user(db: sqlite_utils.Database) -> None:
    admins = wrapped_key(db, "admin")
    assert admins is not None
    put(db, "zhangsan", admins)
    assert _refused(db, "zhangsan", STAFF_PASSWORD).code == "foreign_key"
    assert _refused(db, "zhangsan", ADMIN_PASSWORD).code == "wrong_password"  # the hash still decides first
    put(db, "zhangsan", _edited(admins, user="zhangsan"))
    assert _refused(db, "zhangsan", STAFF_PASSWORD).code == "key_tampered"


def test_a_genuine_copy_of_some_other_key_is_refused(db: sqlite_utils.Database) -> None:
    # Someone who knows zhangsan's password wraps a key of their own in the right labels, hoping the
    # station will seal new applicants under a key they hold: the station's check value says no.
    planted = data_key.wrap(data_key.new_data_key(), STAFF_PASSWORD, station=STATION, user="zhangsan", params=CHEAP)
    put(db, "zhangsan", planted.to_bytes())
    err = _refused(db, "zhangsan", STAFF_PASSWORD)
    assert err.code == "foreign_key"


def test_refusals_lose_nothing(db: sqlite_utils.Database) -> None:
    admin = sign_in(db, "admin", ADMIN_PASSWORD)
    sealed = Sealer(admin.data_key(T0), STATION).seal("app-9", "phone", "13900000000")
    good = wrapped_key(db, "zhangsan")
    assert good is not None
    for bad in (b"junk", good[:-1], _edited(good, station=OTHER_STATION)):
        put(db, "zhangsan", bad)
        with pytest.raises(Refused):
            sign_in(db, "zhangsan", STAFF_PASSWORD)
    put(db, "zhangsan", good)
    clerk = sign_in(db, "zhangsan", STAFF_PASSWORD)
    assert Sealer(clerk.data_key(T0), STATION).open("app-9", "phone", sealed) == "13900000000"
    # The right password with a broken copy is not a wrong guess: no failure was counted.
    row = db.conn.execute("SELECT failures FROM staff WHERE user='zhangsan'").fetchone()
    assert row[0] == 0
