"""Staff accounts made at the hub reach their station, and only theirs (issue 16): `sanji hub add-staff`,
a sync (over HTTP, or a stick both ways), and the person signs in at the station with the password
the hub was given; `sanji hub disable-staff`, another sync, and the same password is refused as
`disabled`. The station's side is the library the window and `--staff` use (node/staff_accounts.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlite_utils

from node import staff_accounts, staff_schema
from node.store import open_store
from replica.errors import Refused
from replica.ids import now_ms as wall_now_ms

from .conftest import Hub, Node
from .processes import ok, run_sanji

PASSWORD = "zhangsan-口令-2026"

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)
ADMIN_PASSWORD = "station-admin-2026"


@contextmanager
def station_db(node: Node) -> Iterator[sqlite_utils.Database]:
    db = open_store(node.dir)
    try:
        yield db
    finally:
        db.conn.close()


def add_staff(hub: Hub, station: str, user: str, name: str, password: str = PASSWORD) -> None:
    res = run_sanji("hub", "add-staff", hub.dir, "--station", station, "--user", user, "--name", name, stdin=password)
    assert res.code == 0, res.stderr
    assert res.data == {"station": station, "user": user}


def accounts(node: Node) -> dict[str, staff_schema.Account]:
    with station_db(node) as db:
        return {a.user: a for a in staff_schema.accounts(db.conn)}


def sign_in(node: Node, user: str, password: str = PASSWORD) -> bytes:
    """The data key of a fresh session, or Refused."""
    with station_db(node) as db:
        now = wall_now_ms()
        return staff_accounts.sign_in(db, station=node.code, user=user, password=password, now_ms=now).data_key(now)


def refusal(node: Node, user: str, password: str = PASSWORD) -> str:
    with pytest.raises(Refused) as caught:
        sign_in(node, user, password)
    return caught.value.code


def synced(node: Node) -> None:
    res = node.sync()
    assert res.code == 0, res.stderr


def test_an_account_made_at_the_hub_signs_in_at_its_station_until_the_hub_disables_it(
    new_village: Callable[[], Node], district_hub: Hub
) -> None:
    v, other = new_village(), new_village()
    # The station has its own administrator (and so its data key) before the hub's account arrives.
    with station_db(v) as db:
        staff_accounts.create_first_admin(
            db, station=v.code, user="admin", name="王站长", password=ADMIN_PASSWORD, now_ms=wall_now_ms()
        )
    add_staff(district_hub, v.code, "zhangsan", "张三")
    add_staff(district_hub, other.code, "lisi", "李四", "lisi-其他站点-口令")
    stored = district_hub.stored_bytes()
    assert b"zhangsan" in stored, "the scan does see the hub's accounts"
    assert PASSWORD.encode() not in stored, "the hub keeps the hash, never the password"

    synced(v)
    held = accounts(v)
    assert set(held) == {"admin", "zhangsan"}, "the station's own account arrived, and no other station's"
    assert held["zhangsan"].source == "hub" and held["zhangsan"].name == "张三" and held["zhangsan"].enabled
    assert held["zhangsan"].wrapped_key is None, "the data key never travels from the hub"
    assert refusal(v, "zhangsan") == "no_data_key", "no colleague has signed in since it arrived"
    admin_key = sign_in(v, "admin", ADMIN_PASSWORD)  # passes the data key on to the new account
    assert sign_in(v, "zhangsan") == admin_key, "the first sign-in opened the grant: the station's own key"
    assert refusal(v, "zhangsan", "not-the-password") == "wrong_password"

    synced(other)
    assert set(accounts(other)) == {"lisi"}, "never zhangsan's hash at another station"
    assert sign_in(other, "lisi", "lisi-其他站点-口令"), "a station with no key yet draws one at first sign-in"

    out = ok("hub", "staff", district_hub.dir, "--station", v.code)
    (row,) = out["staff"]
    assert row["user"] == "zhangsan" and row["enabled"] is True
    assert not {"password_hash", "grant_key"} & set(row) and "scrypt" not in str(out)

    res = run_sanji("hub", "disable-staff", district_hub.dir, "--station", v.code, "--user", "zhangsan")
    assert res.code == 0 and res.data["enabled"] is False, res.stderr
    assert sign_in(v, "zhangsan") == admin_key, "the station has not synced yet"
    synced(v)
    assert refusal(v, "zhangsan") == "disabled"
    assert accounts(v)["zhangsan"].wrapped_key is None, "its copy of the data key is gone with it"
    assert sign_in(v, "admin", ADMIN_PASSWORD) == admin_key, "the station's own administrator is untouched"

    new_password = "zhangsan-新口令-2027"
    res = run_sanji(
        "hub", "enable-staff", district_hub.dir, "--station", v.code, "--user", "zhangsan", stdin=new_password
    )
    assert res.code == 0, res.stderr
    synced(v)
    assert refusal(v, "zhangsan") == "wrong_password", "the old password opens nothing after the reset"
    sign_in(v, "admin", ADMIN_PASSWORD)
    assert sign_in(v, "zhangsan", new_password) == admin_key


def test_the_same_over_a_stick_both_ways(new_village: Callable[[], Node], district_hub: Hub, tmp_path: Path) -> None:
    v, other = new_village(), new_village()
    add_staff(district_hub, v.code, "wangwu", "王五")
    add_staff(district_hub, other.code, "zhaoliu", "赵六")

    stick = tmp_path / "usb-1"
    ok("hub", "export", district_hub.dir, "--station", v.code, "--out", stick)
    res = run_sanji("node", "import", v.dir, stick)
    assert res.code == 0 and res.data["rejected"] == [], res.stderr or res.data
    assert set(accounts(v)) == {"wangwu"}, "the stick carries this station's accounts, and only them"
    first_key = sign_in(v, "wangwu")  # the station's first account draws its data key
    assert len(first_key) == 32

    res = run_sanji("hub", "disable-staff", district_hub.dir, "--station", v.code, "--user", "wangwu")
    assert res.code == 0, res.stderr
    stick2 = tmp_path / "usb-2"
    ok("hub", "export", district_hub.dir, "--station", v.code, "--out", stick2)
    res = run_sanji("node", "import", v.dir, stick2)
    assert res.code == 0 and res.data["rejected"] == [], res.stderr or res.data
    assert refusal(v, "wangwu") == "disabled"

    # The first stick found again later puts back nothing: its account entry is an older version.
    res = run_sanji("node", "import", v.dir, stick)
    assert res.code == 0, res.stderr
    assert refusal(v, "wangwu") == "disabled"
