"""A station's staff accounts in its feed (issue 16): what the hub puts in each station's page, and
how the station takes it. Only the station's own accounts, only sealed to it, only those changed
after the version its pull names; the station records them with the page, holds an entry it refuses
in the feed quarantine with the reason, and never lets an older version replace a newer one."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from hub import staff
from hub.feed import feed_page
from node import feed_quarantine, staff_schema, uplink
from node.station import Station
from protocol.document import open_document
from protocol.feed import FeedPage, PullRequest
from sync.staff_grant import grant_key
from sync.staff_password import ScryptParams, check_password, hash_password
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

CHEAP = ScryptParams(n=2**10, r=8, p=1)
V1, V2, T1 = "T1-V1", "T1-V2", "T1"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world((T1, "township", ""), (V1, "village", T1), (V2, "village", T1))


def add(world: World, station: str, user: str, password: str = "a-good-password") -> int:
    out = staff.add_staff(
        world.hub, station=station, user=user, name=f"名{user}", role="staff", password=password, params=CHEAP
    )
    return int(str(out["version"]))


def page_of(world: World, st: Station, staff_version: int = 0) -> FeedPage:
    data = feed_page(
        world.hub, st.code, after=st.meta.int("feed_cursor"), catalogue_version=1, staff_version=staff_version
    )
    doc = open_document(data, kind="feed", recipient=st.code, verify_key=st.hub_key, unseal_key=lambda k: st.keys.seal)
    return FeedPage.from_wire(doc.body)


def take(st: Station, world: World) -> feed_quarantine.PageOutcome:
    data = feed_page(
        world.hub,
        st.code,
        after=st.meta.int("feed_cursor"),
        catalogue_version=1,
        staff_version=st.meta.int("staff_version"),
    )
    return feed_quarantine.take_page(st, data, source="http")


def users(st: Station) -> dict[str, staff_schema.Account]:
    return {a.user: a for a in staff_schema.accounts(st.conn)}


def test_a_page_carries_only_its_own_stations_accounts(world: World) -> None:
    add(world, V1, "zhangsan")
    add(world, V2, "lisi")
    v1, v2, t1 = world.get(V1), world.get(V2), world.get(T1)
    assert [e["user"] for e in page_of(world, v1).staff] == ["zhangsan"]
    assert [e["user"] for e in page_of(world, v2).staff] == ["lisi"]
    assert page_of(world, t1).staff == (), "a township never receives its villages' hashes"
    entry = page_of(world, v1).staff[0]
    assert set(entry) == {"user", "name", "role", "enabled", "password_hash", "grant_key", "version"}
    assert check_password("a-good-password", str(entry["password_hash"]))


def test_a_page_that_is_not_sealed_carries_no_account(world: World) -> None:
    world.register("T1-V3", "village", T1)  # registered, not yet enrolled: no sealing key pinned
    add(world, "T1-V3", "wangwu")
    data = feed_page(world.hub, "T1-V3", after=0, catalogue_version=1)
    hub_key = world.hub.keys.sign.public_key()
    doc = open_document(data, kind="feed", recipient="T1-V3", verify_key=lambda signer, key: hub_key)
    assert "staff" not in doc.body, "hashes never travel unsealed"


def test_a_pull_asks_only_for_what_changed_since_the_version_it_holds(world: World) -> None:
    v1 = world.get(V1)
    first = add(world, V1, "zhangsan")
    assert take(v1, world).result is not None
    assert v1.meta.int("staff_version") == first
    pull = open_document(
        uplink.pull_frame(v1, v1.meta.int("feed_cursor")),
        kind="pull",
        recipient=world.hub.hub_id,
        verify_key=lambda signer, key: v1.keys.sign.public_key(),
    )
    assert PullRequest.from_wire(pull.body).staff_version == first, "the station tells the hub what it holds"
    assert page_of(world, v1, first).staff == ()
    second = add(world, V1, "lisi")
    staff.disable_staff(world.hub, station=V1, user="zhangsan")
    assert [e["user"] for e in page_of(world, v1, first).staff] == ["lisi", "zhangsan"]
    applied = take(v1, world).result
    assert applied is not None and applied.staff == 2  # counted, for `node sync` to say so
    held = users(v1)
    assert held["lisi"].enabled and not held["zhangsan"].enabled
    assert v1.meta.int("staff_version") > second


def test_an_older_version_never_replaces_a_newer_one(world: World) -> None:
    v1 = world.get(V1)
    add(world, V1, "zhangsan")
    old_page = feed_page(world.hub, V1, after=v1.meta.int("feed_cursor"), catalogue_version=1)
    staff.disable_staff(world.hub, station=V1, user="zhangsan")
    take(v1, world)
    assert not users(v1)["zhangsan"].enabled
    outcome = feed_quarantine.take_page(v1, old_page, source="file:old.sjd")  # an old stick, found again
    assert outcome.result is not None and outcome.result.staff == 0  # nothing of it applied: nothing counted
    assert not users(v1)["zhangsan"].enabled, "the older page put nothing back"


def test_an_entry_the_station_refuses_is_held_and_the_page_still_applies(world: World) -> None:
    v1 = world.get(V1)
    with world.hub.store.transaction():
        bad = world.hub.store.add_staff_account(
            V1,
            "broken",
            name="坏账户",
            role="staff",
            password_hash="plain-text-password",
            now_ms=world.clock(),
            grant_key=grant_key("whatever-pass", os.urandom(16), CHEAP),
        )
    good = add(world, V1, "zhangsan")
    outcome = take(v1, world)
    assert outcome.result is not None, "the page applied"
    assert set(users(v1)) == {"zhangsan"}
    (reason,) = [str(r[0]) for r in v1.conn.execute("SELECT reason FROM feed_quarantine")]
    assert reason.startswith("区局下发的工作人员账户 broken 未予采用") and "格式不对" in reason
    assert bad is not None and v1.meta.int("staff_version") == good > bad, "the refused entry is not asked for again"
    stored = v1.conn.execute("SELECT count(*) FROM staff WHERE password_hash LIKE 'plain%'").fetchone()[0]
    assert stored == 0


def test_a_hash_set_at_the_hub_is_checked_by_the_station_as_it_is(world: World) -> None:
    """The format is one: what sync/staff_password.py writes at the hub, the station's sign-in reads."""
    v1 = world.get(V1)
    with world.hub.store.transaction():
        world.hub.store.add_staff_account(
            V1,
            "zhaoliu",
            name="赵六",
            role="admin",
            now_ms=world.clock(),
            password_hash=hash_password("zhaoliu-口令", os.urandom(16), CHEAP),
            grant_key=grant_key("zhaoliu-口令", os.urandom(16), CHEAP),
        )
    take(v1, world)
    account = users(v1)["zhaoliu"]
    assert account.role == "admin" and account.source == "hub" and check_password("zhaoliu-口令", account.password_hash)


def test_a_hub_restored_from_backup_is_asked_for_every_account_again(world: World) -> None:
    v1 = world.get(V1)
    add(world, V1, "zhangsan")
    take(v1, world)
    assert v1.meta.int("staff_version") > 0
    with world.hub.store.transaction():
        world.hub.store.set_meta("generation", "restored-from-backup")  # what hub/restore.py does
    take(v1, world)  # the new generation: the cursor starts over
    assert v1.meta.int("staff_version") == 0
    assert [e["user"] for e in page_of(world, v1, v1.meta.int("staff_version")).staff] == ["zhangsan"]
    take(v1, world)
    assert users(v1)["zhangsan"].enabled and v1.meta.int("staff_version") > 0
