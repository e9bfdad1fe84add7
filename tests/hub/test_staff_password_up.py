"""A password changed at the station travels up to the hub (issue 16), on SQLite and PostgreSQL.

The station records the change as a signed ``staff`` change (``sync/staff_change.py``): the new scrypt
hash and grant key, never the password. The hub applies it to its account with a new version, so its
next feed entry carries the new hash back; an entry the hub wrote before (a later disable, an old
stick) never puts the old hash back at the station; a reset at the hub that the station had not seen
wins at both ends. A password change for another station's account, by someone other than the person
or the station's administrator, or for an account the hub never made is quarantined with its reason,
and the station's own write path refuses it with the same code.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub import staff
from hub.feed import feed_page
from node import feed_quarantine, staff_password, staff_schema
from node.station import Station
from replica.errors import Refused
from sync.staff_change import STAFF_ENTITY, fields, record_id
from sync.staff_grant import grant_key
from sync.staff_password import check_password, hash_password
from tests.conftest import World
from tests.node.staff_helpers import CHEAP, account_of, signs_in

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

V1, V2, T1 = "T1-V1", "T1-V2", "T1"
FIRST, SECOND = "lisi-first-pw", "lisi-second-pw"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world((T1, "township", ""), (V1, "village", T1), (V2, "village", T1))


def add(world: World, station: str, user: str, *, role: str = "staff", password: str = FIRST) -> None:
    staff.add_staff(world.hub, station=station, user=user, name=f"名{user}", role=role, password=password, params=CHEAP)


def change(st: Station, user: str, old: str, new: str) -> None:
    staff_password.change(st, user=user, old=old, new=new, params=CHEAP)


def hub_hash(world: World, station: str, user: str) -> str:
    held = world.hub.store.staff_account(station, user)
    assert held is not None
    return held.password_hash


def held(world: World) -> list[tuple[str, str]]:
    rows = world.hub.store.conn.execute("SELECT origin, code FROM quarantine ORDER BY id").fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def test_the_new_hash_reaches_the_hub_and_its_feed_carries_it_back(world: World) -> None:
    v1 = world.get(V1)
    add(world, V1, "lisi")
    world.pull(v1)
    before = world.hub.store.staff_account(V1, "lisi")
    assert before is not None
    change(v1, "lisi", FIRST, SECOND)
    assert all(a.result.value == "applied" for a in world.push(v1))
    after = world.hub.store.staff_account(V1, "lisi")
    assert after is not None and after.version > before.version
    assert check_password(SECOND, after.password_hash) and not check_password(FIRST, after.password_hash)
    assert after.password_hash == account_of(v1, "lisi").password_hash
    assert after.grant_key == account_of(v1, "lisi").grant_key
    logged = world.hub.store.conn.execute("SELECT author FROM changes WHERE entity='staff'").fetchall()
    assert [r[0] for r in logged] == ["lisi"]

    world.pull(v1)  # the echo: same hash, the copy of the data key stays
    echoed = account_of(v1, "lisi")
    assert echoed.password_seen is None and echoed.hub_version == after.version
    assert echoed.wrapped_key is not None
    assert signs_in(v1, "lisi", SECOND) == "ok" and signs_in(v1, "lisi", FIRST) != "ok"
    # The other village never hears of it.
    assert staff_schema.account(world.get(V2).conn, "lisi") is None


def test_an_entry_the_hub_wrote_before_it_took_the_change_never_brings_the_old_hash_back(world: World) -> None:
    v1 = world.get(V1)
    add(world, V1, "lisi")
    world.pull(v1)
    stick = feed_page(world.hub, V1, after=v1.meta.int("feed_cursor"), catalogue_version=1)  # every account
    change(v1, "lisi", FIRST, SECOND)
    outcome = feed_quarantine.take_page(v1, stick, source="file:old.sjd")  # an old stick, found later
    assert outcome.result is not None
    assert check_password(SECOND, account_of(v1, "lisi").password_hash)
    assert signs_in(v1, "lisi", SECOND) == "ok"

    staff.disable_staff(world.hub, station=V1, user="lisi")  # the hub moves on before the change arrives
    world.pull(v1)
    kept = account_of(v1, "lisi")
    assert not kept.enabled and kept.wrapped_key is None, "disabled as the hub says"
    assert check_password(SECOND, kept.password_hash), "but the password stays the person's new one"
    world.push(v1)
    assert check_password(SECOND, hub_hash(world, V1, "lisi"))
    hub_row = world.hub.store.staff_account(V1, "lisi")
    assert hub_row is not None and not hub_row.enabled, "a password change never enables an account"
    world.pull(v1)
    assert account_of(v1, "lisi").password_hash == hub_row.password_hash
    assert account_of(v1, "lisi").password_seen is None


def test_a_reset_at_the_hub_the_station_had_not_seen_wins_at_both_ends(world: World) -> None:
    v1 = world.get(V1)
    add(world, V1, "lisi")
    world.pull(v1)
    staff.enable_staff(world.hub, station=V1, user="lisi", password="reset-at-the-hub", params=CHEAP)
    change(v1, "lisi", FIRST, SECOND)  # made on the version before the reset
    world.push(v1)
    assert held(world) == [], "authentic and authorised: logged, and the later reset wins"
    assert check_password("reset-at-the-hub", hub_hash(world, V1, "lisi"))
    world.pull(v1)
    taken = account_of(v1, "lisi")
    assert check_password("reset-at-the-hub", taken.password_hash)
    assert taken.password_seen is None and taken.wrapped_key is None, "the copy under the losing password goes"
    assert signs_in(v1, "lisi", SECOND) != "ok"


def forge(st: Station, rec_id: str, author: str, password: str = "forged-password") -> None:
    """What a station running modified software could sign: a staff change the commands never write."""
    wrote = fields(hash_password(password, b"s" * 16, CHEAP), grant_key(password, b"g" * 16, CHEAP), 0)
    with st.transaction():
        c = st.write_unchecked(STAFF_ENTITY, rec_id, wrote, {})
        st.conn.execute("UPDATE changes SET author=? WHERE origin=? AND seq=?", (author, c.origin, c.seq))


def test_a_change_for_another_stations_account_is_quarantined_with_its_reason(world: World) -> None:
    add(world, V2, "wangwu", password="wangwu-first-pw")
    v1 = world.get(V1)
    forge(v1, record_id(V2, "wangwu"), "wangwu")
    world.push(v1)
    assert held(world) == [(V1, "staff_foreign")]
    assert check_password("wangwu-first-pw", hub_hash(world, V2, "wangwu"))
    reason = world.hub.store.conn.execute("SELECT reason FROM quarantine").fetchone()[0]
    assert "不能修改站点 T1-V2 的工作人员密码" in str(reason)


def test_only_the_person_or_the_stations_administrator_may_change_a_password(world: World) -> None:
    v1 = world.get(V1)
    add(world, V1, "lisi")
    add(world, V1, "zhangsan", password="zhangsan-first-pw")
    add(world, V1, "wang", role="admin", password="wang-first-pw")
    forge(v1, record_id(V1, "lisi"), "zhangsan", "set-by-a-colleague")
    forge(v1, record_id(V1, "ghost"), "ghost")  # an account the hub never made
    world.push(v1)
    assert held(world) == [(V1, "staff_not_self"), (V1, "unknown_staff")]
    assert check_password(FIRST, hub_hash(world, V1, "lisi"))
    forge(v1, record_id(V1, "lisi"), "wang", "set-by-the-admin")
    world.push(v1)
    assert check_password("set-by-the-admin", hub_hash(world, V1, "lisi"))


def test_the_station_refuses_to_write_what_the_hub_would_hold(world: World) -> None:
    v1 = world.get(V1)
    add(world, V1, "lisi")
    world.pull(v1)
    wrote = fields(hash_password("x-password", b"s" * 16, CHEAP), grant_key("x-password", b"g" * 16, CHEAP), 0)
    seq = v1.meta.int("seq")
    for rec_id, author, code in [
        (record_id(V2, "lisi"), "lisi", "staff_foreign"),
        (record_id(V1, "lisi"), "zhangsan", "staff_not_self"),
        (record_id(V1, "ghost"), "ghost", "unknown_staff"),
    ]:
        with pytest.raises(Refused) as refused, v1.transaction():
            v1.write(STAFF_ENTITY, rec_id, wrote, {}, author=author)
        assert refused.value.code == code
    with pytest.raises(Refused) as refused, v1.transaction():
        v1.write(STAFF_ENTITY, record_id(V1, "lisi"), {**wrote, "seen": -1}, {}, author="lisi")
    assert refused.value.code == "bad_staff_change"
    assert v1.meta.int("seq") == seq
