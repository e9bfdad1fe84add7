"""Accounts the hub makes for a station (issue 16): they land from the feed with a hash and a grant key,
receive the data key through a colleague's session, follow the hub when it disables them or sets a
new password, and refuse a grant that was altered or holds another station's key. The hub's side is
played here with the shared functions the hub will call (sync/staff_password.py, sync/staff_grant.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlite_utils
from cryptography.hazmat.primitives import hpke

from node import staff_grants, staff_schema
from node.data_key import new_data_key
from node.sealed_fields import Sealer
from node.staff_grants import FeedAccount
from protocol.codec import pack
from protocol.keys import load_seal_public
from replica.errors import Refused
from sync.staff_grant import grant_key, parse_grant_key
from sync.staff_password import hash_password
from tests.node.staff_helpers import (
    ADMIN_PASSWORD,
    CHEAP,
    OTHER_STATION,
    STATION,
    T0,
    first_admin,
    sign_in,
    station,
    wrapped_key,
)

LISI_PASSWORD = "lisi-from-the-hub"


def hub_account(user: str = "lisi", password: str = LISI_PASSWORD, *, enabled: bool = True) -> FeedAccount:
    """What `sanji hub add-staff` would put in the feed: never the password itself."""
    return FeedAccount(
        user=user,
        name="李四",
        role="staff",
        enabled=enabled,
        password_hash=hash_password(password, os.urandom(16), CHEAP),
        grant_key=grant_key(password, os.urandom(16), CHEAP),
        version=0,
    )


def land(db: sqlite_utils.Database, account: FeedAccount, now_ms: int = T0) -> None:
    staff_grants.from_feed(db, account=account, now_ms=now_ms)


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    made = station(tmp_path / "V")
    first_admin(made)
    return made


def test_a_hub_account_gets_the_key_once_a_colleague_has_signed_in(db: sqlite_utils.Database) -> None:
    land(db, hub_account())
    row = staff_schema.account(db.conn, "lisi")
    assert row is not None and row.source == "hub" and row.wrapped_key is None and row.grant is None
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", LISI_PASSWORD)
    assert e.value.code == "no_data_key" and "同事登录一次" in str(e.value)

    admin = sign_in(db, "admin", ADMIN_PASSWORD, now_ms=T0 + 1)  # seals the key to lisi's grant key
    row = staff_schema.account(db.conn, "lisi")
    assert row is not None and row.grant is not None and row.wrapped_key is None
    sealed = Sealer(admin.data_key(T0 + 1), STATION).seal("app-1", "address", "测试镇测试村3组4号")

    lisi = sign_in(db, "lisi", LISI_PASSWORD, now_ms=T0 + 2)
    assert Sealer(lisi.data_key(T0 + 2), STATION).open("app-1", "address", sealed) == "测试镇测试村3组4号"
    row = staff_schema.account(db.conn, "lisi")
    assert row is not None and row.grant is None and row.wrapped_key is not None  # wrapped like any other copy
    assert sign_in(db, "lisi", LISI_PASSWORD, now_ms=T0 + 3).data_key(T0 + 3) == admin.data_key(T0 + 3)


def test_the_grant_needs_the_password(db: sqlite_utils.Database) -> None:
    land(db, hub_account())
    sign_in(db, "admin", ADMIN_PASSWORD)
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", "a-guess-at-it")
    assert e.value.code == "wrong_password"
    row = staff_schema.account(db.conn, "lisi")
    assert row is not None and row.grant is not None  # still waiting, nothing lost


def test_the_hub_disabling_an_account_takes_its_key_away(db: sqlite_utils.Database) -> None:
    account = hub_account()
    land(db, account)
    sign_in(db, "admin", ADMIN_PASSWORD)
    sign_in(db, "lisi", LISI_PASSWORD)
    assert wrapped_key(db, "lisi") is not None
    land(db, FeedAccount(**{**account.__dict__, "enabled": False}), now_ms=T0 + 5)
    assert wrapped_key(db, "lisi") is None
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", LISI_PASSWORD, now_ms=T0 + 6)
    assert e.value.code == "disabled"
    sign_in(db, "admin", ADMIN_PASSWORD, now_ms=T0 + 7)  # a disabled account is granted nothing
    row = staff_schema.account(db.conn, "lisi")
    assert row is not None and row.grant is None


def test_a_new_password_from_the_hub_retires_the_old_copy(db: sqlite_utils.Database) -> None:
    land(db, hub_account())
    sign_in(db, "admin", ADMIN_PASSWORD)
    sign_in(db, "lisi", LISI_PASSWORD)
    land(db, hub_account(password="lisi-second-pass"), now_ms=T0 + 10)
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", LISI_PASSWORD, now_ms=T0 + 11)
    assert e.value.code == "wrong_password"
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", "lisi-second-pass", now_ms=T0 + 12)
    assert e.value.code == "no_data_key"
    sign_in(db, "admin", ADMIN_PASSWORD, now_ms=T0 + 13)
    assert sign_in(db, "lisi", "lisi-second-pass", now_ms=T0 + 14).user == "lisi"


def test_the_hub_may_disable_the_last_administrator(db: sqlite_utils.Database) -> None:
    land(db, FeedAccount(**{**hub_account("admin", ADMIN_PASSWORD).__dict__, "role": "admin", "enabled": False}))
    with pytest.raises(Refused) as e:
        sign_in(db, "admin", ADMIN_PASSWORD)
    assert e.value.code == "disabled"


@pytest.mark.parametrize(
    "change",
    [
        {"user": "Li Si"},
        {"name": ""},
        {"role": "root"},
        {"password_hash": "plain-password"},
        {"grant_key": "scrypt$1024$8$1$AAAA$AAAA"},
    ],
)
def test_a_malformed_account_from_the_hub_is_refused_and_changes_nothing(
    db: sqlite_utils.Database, change: dict[str, str]
) -> None:
    with pytest.raises(Refused) as e:
        land(db, FeedAccount(**{**hub_account().__dict__, **change}))
    assert e.value.code == "bad_account" and str(e.value).startswith("区局下发的工作人员账户")
    assert [a.user for a in staff_schema.accounts(db.conn)] == ["admin"]


def test_an_altered_grant_is_refused(db: sqlite_utils.Database) -> None:
    land(db, hub_account())
    sign_in(db, "admin", ADMIN_PASSWORD)
    row = staff_schema.account(db.conn, "lisi")
    assert row is not None and row.grant is not None
    damaged = row.grant[:-1] + bytes([row.grant[-1] ^ 1])
    db.conn.execute("UPDATE staff SET grant=? WHERE user='lisi'", (damaged,))
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", LISI_PASSWORD)
    assert e.value.code == "key_tampered" and "已作废" in str(e.value)
    # The useless grant is gone; the next colleague to sign in seals a good one.
    after = staff_schema.account(db.conn, "lisi")
    assert after is not None and after.grant is None and after.failed_at == ()
    sign_in(db, "admin", ADMIN_PASSWORD, now_ms=T0 + 1)
    assert sign_in(db, "lisi", LISI_PASSWORD, now_ms=T0 + 2).user == "lisi"


def test_a_grant_from_another_station_is_refused(tmp_path: Path, db: sqlite_utils.Database) -> None:
    account = hub_account()
    other = station(tmp_path / "W")
    first_admin(other, OTHER_STATION)
    land(db, account)
    land(other, account)
    sign_in(other, "admin", ADMIN_PASSWORD, code=OTHER_STATION)
    lifted = staff_schema.account(other.conn, "lisi")
    assert lifted is not None and lifted.grant is not None
    db.conn.execute("UPDATE staff SET grant=? WHERE user='lisi'", (lifted.grant,))
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", LISI_PASSWORD)
    assert e.value.code == "key_tampered"  # bound to the other station's code: it does not open here


def test_a_grant_of_some_other_key_is_refused(db: sqlite_utils.Database) -> None:
    # Sealed in the right labels to lisi's genuine grant key, but holding a key this station never
    # made: whoever planted it would hold the key new applicants get sealed under. The check says no.
    account = hub_account()
    land(db, account)
    parsed = parse_grant_key(account.grant_key)
    assert parsed is not None
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    info = pack(["sanji/staff-grant/1", STATION, "lisi"])
    planted = suite.encrypt(new_data_key(), load_seal_public(parsed[2]), info=info)
    db.conn.execute("UPDATE staff SET grant=? WHERE user='lisi'", (planted,))
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", LISI_PASSWORD)
    assert e.value.code == "foreign_key" and str(e.value).startswith("这个密钥不属于本站")
    assert wrapped_key(db, "lisi") is None
    sign_in(db, "admin", ADMIN_PASSWORD, now_ms=T0 + 1)  # the planted grant was discarded: a good one now
    assert sign_in(db, "lisi", LISI_PASSWORD, now_ms=T0 + 2).user == "lisi"


def test_a_station_that_never_had_a_key_draws_one_at_the_first_sign_in(tmp_path: Path) -> None:
    # A station made before staff accounts: no administrator of its own, its first account from the hub.
    db = station(tmp_path / "old")
    land(db, hub_account())
    land(db, hub_account("wangwu", "wangwu-from-the-hub"))
    assert staff_schema.key_check(db.conn) is None
    lisi = sign_in(db, "lisi", LISI_PASSWORD)
    key = lisi.data_key(T0)
    assert staff_schema.key_check(db.conn) is not None and wrapped_key(db, "lisi") is not None
    # lisi's sign-in drew the key and at once sealed it to wangwu's grant key.
    wangwu = sign_in(db, "wangwu", "wangwu-from-the-hub", now_ms=T0 + 1)
    assert wangwu.data_key(T0 + 1) == key
    assert sign_in(db, "lisi", LISI_PASSWORD, now_ms=T0 + 2).data_key(T0 + 2) == key


def test_a_lost_check_value_never_starts_a_second_key(db: sqlite_utils.Database) -> None:
    land(db, hub_account())
    db.conn.execute("DELETE FROM station_key")  # an edited database: the admin's copy is still there
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", LISI_PASSWORD)
    assert e.value.code == "no_data_key"
    assert staff_schema.key_check(db.conn) is None
