"""The store's contract for station staff accounts (``hub/store/staff.py``), on every backend: accounts
are kept per station, every change takes a higher version, and a station's feed reads only its own
accounts changed after the version it holds."""

from __future__ import annotations

from pathlib import Path

from hub.store import HubStore

from .store_backends import T0, Backend


def _add(store: HubStore, station: str, user: str, now_ms: int = T0) -> int | None:
    with store.transaction():
        return store.add_staff_account(
            station,
            user,
            name=f"名{user}",
            role="staff",
            password_hash=f"hash:{user}",
            grant_key=f"grant:{user}",
            now_ms=now_ms,
        )


def test_an_account_is_kept_as_given_and_listed_per_station(store: HubStore) -> None:
    assert store.staff_accounts() == [] and store.staff_account("S1", "zhangsan") is None
    version = _add(store, "S1", "zhangsan")
    _add(store, "S2", "lisi")
    _add(store, "S1", "admin")
    held = store.staff_account("S1", "zhangsan")
    assert held is not None and version is not None
    assert (held.station, held.user, held.name, held.role, held.enabled) == (
        "S1",
        "zhangsan",
        "名zhangsan",
        "staff",
        True,
    )
    assert (held.password_hash, held.grant_key, held.version) == ("hash:zhangsan", "grant:zhangsan", version)
    assert held.created_ms == held.changed_ms == T0
    assert [(a.station, a.user) for a in store.staff_accounts()] == [
        ("S1", "admin"),
        ("S1", "zhangsan"),
        ("S2", "lisi"),
    ]
    assert [a.user for a in store.staff_accounts("S2")] == ["lisi"]


def test_the_same_user_twice_at_one_station_changes_nothing(store: HubStore) -> None:
    first = _add(store, "S1", "zhangsan")
    assert _add(store, "S1", "zhangsan", T0 + 5) is None
    held = store.staff_account("S1", "zhangsan")
    assert held is not None and held.version == first and held.changed_ms == T0
    assert _add(store, "S2", "zhangsan") is not None, "another station may have its own zhangsan"


def test_every_change_takes_a_higher_version_even_with_the_clock_behind(store: HubStore) -> None:
    v1 = _add(store, "S1", "zhangsan", T0)
    assert v1 is not None and v1 >= T0, "versions start at the hub's clock, so a restored hub keeps climbing"
    with store.transaction():
        v2 = store.set_staff_account("S1", "zhangsan", enabled=False, now_ms=T0 - 60_000)
    assert v2 is not None and v2 > v1
    held = store.staff_account("S1", "zhangsan")
    assert held is not None and not held.enabled and held.password_hash == "hash:zhangsan"
    with store.transaction():
        v3 = store.set_staff_account(
            "S1", "zhangsan", enabled=True, password_hash="hash:new", grant_key="grant:new", now_ms=T0 + 9
        )
    held = store.staff_account("S1", "zhangsan")
    assert v3 is not None and v3 > v2
    assert held is not None and held.enabled and (held.password_hash, held.grant_key) == ("hash:new", "grant:new")
    assert held.changed_ms == T0 + 9 and held.created_ms == T0
    with store.transaction():
        assert store.set_staff_account("S1", "nobody", enabled=False, now_ms=T0) is None


def test_a_feed_reads_only_its_stations_accounts_changed_after_a_version(store: HubStore) -> None:
    a = _add(store, "S1", "zhangsan")
    _add(store, "S2", "lisi")
    b = _add(store, "S1", "wangwu")
    assert a is not None and b is not None
    assert [x.user for x in store.staff_changed_after("S1", 0)] == ["zhangsan", "wangwu"]
    assert [x.user for x in store.staff_changed_after("S1", a)] == ["wangwu"]
    assert store.staff_changed_after("S1", b) == []
    with store.transaction():
        c = store.set_staff_account("S1", "zhangsan", enabled=False, now_ms=T0)
    changed = store.staff_changed_after("S1", b)
    assert [(x.user, x.enabled, x.version) for x in changed] == [("zhangsan", False, c)]
    assert [x.user for x in store.staff_changed_after("S2", 0)] == ["lisi"]
    assert store.staff_changed_after("S3", 0) == []


def test_accounts_and_versions_survive_a_reopen(backend: Backend, folder: Path) -> None:
    s = backend.create(folder)
    v1 = _add(s, "S1", "zhangsan")
    s.close()
    s = backend.reopen(folder)
    try:
        held = s.staff_account("S1", "zhangsan")
        assert held is not None and held.version == v1
        v2 = _add(s, "S1", "lisi", T0 - 1)
        assert v1 is not None and v2 is not None and v2 > v1
    finally:
        s.close()


def test_a_rolled_back_change_leaves_account_and_version_as_they_were(store: HubStore) -> None:
    v1 = _add(store, "S1", "zhangsan")
    try:
        with store.transaction():
            store.set_staff_account("S1", "zhangsan", enabled=False, now_ms=T0 + 1)
            raise RuntimeError("the command failed after the write")
    except RuntimeError:
        pass
    held = store.staff_account("S1", "zhangsan")
    assert held is not None and held.enabled and held.version == v1
    v2 = _add(store, "S1", "lisi")
    assert v1 is not None and v2 == v1 + 1, "the rolled-back version was not spent"
