"""A password change the hub held back, released by an operator (issue 16), on SQLite and PostgreSQL.

Released, a ``staff`` change takes exactly the path ingest takes for a fresh one
(``hub/quarantine_review.py``): the same admission question with its station's authority, the clock
included, and the same ``password_version`` rule at the account. So after its release the hub's
account holds the new hash and its next feed entry carries it back; a hub reset the station had not
seen still wins; and one that admission refuses again stays held, with the reason, and changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub import quarantine_review, staff
from hub.store import StaffAccount
from node import staff_password, staff_schema
from node.station import Station
from replica.errors import Refused
from sync.staff_change import STAFF_ENTITY, fields, record_id
from sync.staff_grant import grant_key
from sync.staff_password import ScryptParams, check_password, hash_password
from tests.conftest import MINUTE_MS, SkewedClock, World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

CHEAP = ScryptParams(n=2**10, r=8, p=1)
V1 = "T1-V1"
FIRST, SECOND = "lisi-first-pw", "lisi-second-pw"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world(("T1", "township", ""))


@pytest.fixture
def fast(world: World) -> SkewedClock:
    return SkewedClock(world.clock, 11 * MINUTE_MS)  # the station's clock runs 11 minutes ahead


@pytest.fixture
def v1(world: World, fast: SkewedClock) -> Station:
    st = world.station(V1, "village", "T1", clock=fast)
    staff.add_staff(world.hub, station=V1, user="lisi", name="李四", role="staff", password=FIRST, params=CHEAP)
    world.pull(st)
    staff_password.change(st, user="lisi", old=FIRST, new=SECOND, params=CHEAP)
    (ack,) = world.push(st)
    assert ack.quarantined == 1
    return st


def hub_account(world: World) -> StaffAccount:
    held = world.hub.store.staff_account(V1, "lisi")
    assert held is not None
    return held


def rows(world: World) -> list[tuple[int, str, str, str]]:
    got = world.hub.store.conn.execute("SELECT id, code, state, note FROM quarantine ORDER BY id").fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3] or "")) for r in got]


def test_released_once_the_clock_allows_it_the_hubs_account_takes_the_new_password(world: World, v1: Station) -> None:
    ((qid, code, state, _),) = rows(world)
    assert (code, state) == ("clock_ahead", "open")
    before = hub_account(world)
    assert check_password(FIRST, before.password_hash)

    with pytest.raises(Refused) as again:  # still ahead of the hub's clock: admission refuses it again
        quarantine_review.release(world.hub, qid, by="审核员")
    assert again.value.code == "clock_ahead" and "仍留在隔离区" in str(again.value)
    assert [r[2] for r in rows(world)] == ["open"] and hub_account(world) == before

    world.clock.advance(5 * MINUTE_MS)  # now within the hub's bound, as ingest would take it
    out = quarantine_review.release(world.hub, qid, by="审核员")
    assert out["change"] == {"origin": V1, "epoch": 1, "seq": v1.meta.int("seq")}, "applied as the station sent it"
    after = hub_account(world)
    assert after.version > before.version
    assert check_password(SECOND, after.password_hash) and after.password_hash == _station_hash(v1)
    ((_, _, state, note),) = rows(world)
    assert state == "released" and "区局账户已采用新密码" in note
    assert world.hub.records.has_change(V1, 1, v1.meta.int("seq"))

    world.pull(v1)  # the echo: the station keeps the new password and its copy of the key
    echoed = staff_schema.account(v1.conn, "lisi")
    assert echoed is not None and echoed.password_seen is None and echoed.wrapped_key is not None


def test_a_hub_reset_after_the_change_still_wins_when_it_is_released(world: World, v1: Station) -> None:
    ((qid, *_),) = rows(world)
    staff.enable_staff(world.hub, station=V1, user="lisi", password="reset-at-the-hub", params=CHEAP)
    world.clock.advance(5 * MINUTE_MS)
    quarantine_review.release(world.hub, qid, by="审核员")
    assert check_password("reset-at-the-hub", hub_account(world).password_hash), "password_version decides"
    ((_, _, state, note),) = rows(world)
    assert state == "released" and "以区局的为准" in note


def test_a_change_admission_refuses_again_stays_held_with_the_reason(
    world: World, v1: Station, fast: SkewedClock
) -> None:
    staff.add_staff(world.hub, station=V1, user="zhao", name="赵六", role="staff", password=FIRST, params=CHEAP)
    world.pull(v1)
    fast.offset_ms = 0  # the station's clock put right, and time passes: only the forgery's author is wrong
    world.clock.advance(12 * MINUTE_MS)
    wrote = fields(hash_password("forged-pw", b"s" * 16, CHEAP), grant_key("forged-pw", b"g" * 16, CHEAP), 0)
    with v1.transaction():  # what modified software could sign: a colleague's password set by zhao
        c = v1.write_unchecked(STAFF_ENTITY, record_id(V1, "lisi"), wrote, {})
        v1.conn.execute("UPDATE changes SET author='zhao' WHERE origin=? AND seq=?", (c.origin, c.seq))
    world.push(v1)
    (_, (qid, code, _, _)) = rows(world)
    assert code == "staff_not_self"
    with pytest.raises(Refused) as again:
        quarantine_review.release(world.hub, qid, by="审核员")
    assert again.value.code == "staff_not_self" and "仍留在隔离区待审" in str(again.value)
    assert [r[2] for r in rows(world)] == ["open", "open"]
    assert not world.hub.records.has_change(V1, 1, c.seq)
    assert check_password(FIRST, hub_account(world).password_hash)
    quarantine_review.reject(world.hub, qid, by="审核员", reason="非本人或管理员所改")  # it can still be rejected
    assert [r[2] for r in rows(world)] == ["open", "rejected"]


def _station_hash(st: Station) -> str:
    found = staff_schema.account(st.conn, "lisi")
    assert found is not None
    return found.password_hash
