"""An administrator's reset of a colleague's password at the station travels up to the hub (issue 16),
on SQLite and on PostgreSQL.

The reset (``node/staff_reset.py``) writes the same signed ``staff`` change as the person's own, only
authored by the station's administrator. The hub admits it by the one admission question ("the
person or an enabled administrator of that station") and applies it by ``password_version`` exactly
as the person's own: its account takes the new hash, the feed's echo leaves the colleague's copy of
the data key in place, and a reset at the hub the station had not seen wins at both ends. A reset by
someone the hub does not know as an administrator (the station's database edited to say so) is
written by that station but quarantined at the hub with the code the station's own write path uses.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub import staff
from hub.store import StaffAccount
from node import staff_reset, staff_schema
from node.station import Station
from sync.staff_password import check_password
from tests.conftest import World
from tests.node.staff_helpers import CHEAP, signs_in

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

V1 = "T1-V1"
PASSWORDS = {"wang": "wang-admin-pw-1", "lisi": "lisi-first-pw", "zhao": "zhao-first-pw"}
NEW = "lisi-reset-by-wang"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world(("T1", "township", ""), (V1, "village", "T1"))


@pytest.fixture
def v1(world: World) -> Station:
    st = world.get(V1)
    for user, role in (("wang", "admin"), ("lisi", "staff"), ("zhao", "staff")):
        staff.add_staff(
            world.hub, station=V1, user=user, name=f"名{user}", role=role, password=PASSWORDS[user], params=CHEAP
        )
    world.pull(st)
    for user, password in PASSWORDS.items():
        assert signs_in(st, user, password) == "ok"  # the first draws the key, the others redeem their grants
    return st


def reset(st: Station, by: str, user: str = "lisi", new: str = NEW) -> dict[str, object]:
    return staff_reset.reset(st, admin=by, admin_password=PASSWORDS[by], user=user, new=new, params=CHEAP)


def hub_account(world: World, user: str) -> StaffAccount:
    held = world.hub.store.staff_account(V1, user)
    assert held is not None
    return held


def held(world: World) -> list[tuple[str, str]]:
    rows = world.hub.store.conn.execute("SELECT origin, code FROM quarantine ORDER BY id").fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def test_the_administrators_reset_reaches_the_hub_and_the_echo_keeps_the_colleagues_key(
    world: World, v1: Station
) -> None:
    before = hub_account(world, "lisi")
    assert reset(v1, "wang")["travels"] is True
    assert all(a.result.value == "applied" for a in world.push(v1))
    assert held(world) == []
    after = hub_account(world, "lisi")
    assert after.version > before.version
    assert check_password(NEW, after.password_hash) and not check_password(PASSWORDS["lisi"], after.password_hash)
    logged = world.hub.store.conn.execute("SELECT author, rid FROM changes WHERE entity='staff'").fetchall()
    assert [(r[0], r[1]) for r in logged] == [("wang", f"{V1}/lisi")]

    world.pull(v1)  # the echo: the same hash, so the copy of the data key wrapped by the reset stays
    echoed = staff_schema.account(v1.conn, "lisi")
    assert echoed is not None and echoed.wrapped_key is not None and echoed.password_seen is None
    assert echoed.password_hash == after.password_hash and echoed.hub_version == after.version
    assert signs_in(v1, "lisi", NEW) == "ok" and signs_in(v1, "lisi", PASSWORDS["lisi"]) != "ok"


def test_a_reset_at_the_hub_the_station_had_not_seen_wins_over_the_administrators(world: World, v1: Station) -> None:
    staff.enable_staff(world.hub, station=V1, user="lisi", password="reset-at-the-hub", params=CHEAP)
    reset(v1, "wang")  # made on the version before the hub's reset
    world.push(v1)
    assert held(world) == [], "authentic and authorised: logged, and the later reset wins"
    assert check_password("reset-at-the-hub", hub_account(world, "lisi").password_hash)
    world.pull(v1)
    assert signs_in(v1, "lisi", NEW) != "ok", "the station takes the hub's reset"
    taken = staff_schema.account(v1.conn, "lisi")
    assert taken is not None and check_password("reset-at-the-hub", taken.password_hash)

    # Once the station has seen the hub's reset, the administrator's next reset wins in turn.
    reset(v1, "wang", new="lisi-second-reset")
    world.push(v1)
    assert check_password("lisi-second-reset", hub_account(world, "lisi").password_hash)


def test_a_reset_by_someone_the_hub_does_not_know_as_administrator_is_held_with_the_stations_code(
    world: World, v1: Station
) -> None:
    # The station's database edited so that zhao is an administrator there; the hub says otherwise.
    with v1.transaction() as conn:
        conn.execute("UPDATE staff SET role='admin' WHERE user='zhao'")
    reset(v1, "zhao")
    (ack,) = world.push(v1)
    assert ack.quarantined == 1
    assert held(world) == [(V1, "staff_not_self")]
    reason = world.hub.store.conn.execute("SELECT reason FROM quarantine").fetchone()[0]
    assert "只能由本人或本站管理员修改" in str(reason) and "zhao" in str(reason)
    assert check_password(PASSWORDS["lisi"], hub_account(world, "lisi").password_hash), "the hub's account unmoved"
