"""The contract of :class:`hub.store.HubStore`, written once for every backend: the store as a whole.

The hub's ingest, feed, operations and CLI code reach the database only through ``HubStore``; a
second backend (PostgreSQL, for a city-sized deployment) must pass this module and its siblings
unchanged. So the tests use only the store's public methods, plus one backend hook: how changes get
into the log (the hub logs them with ``replica.records.RecordStore`` on the store's connection), since
the feed, the scope and the records' queries read the log and what the fold made of it.

This module covers the store's lifecycle (create, open, reopen, ping, data_version), settings,
releases and operators, transactions (and the group commit's steps, and the store's own error), the
figures it counts, and the parts of replica/ it hands out. ``test_store_stations``, ``test_store_sync``,
``test_store_chains`` and ``test_store_records`` cover the rest. To add a backend, append a
:class:`Backend` to ``BACKENDS`` in ``store_backends.py``. Each test's docstring states the contract
point it checks. Values that a backend may represent differently (SQLite's 0/1 for booleans) are
compared through ``bool``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.store import HubStore, StoreError
from protocol.errors import SanjiError
from replica.errors import Refused
from sync.change import Change
from sync.session import Cursor

from .store_backends import H1, H2, H3, KEY_A, SEAL_A, T0, Backend, _record, _station_tree

# -- lifecycle ---------------------------------------------------------------------------------


def test_create_refuses_an_existing_store_and_open_refuses_a_missing_one(
    backend: Backend, folder: Path, tmp_path: Path
) -> None:
    """``create`` never adopts an existing hub (FileExistsError); ``open`` never makes one (Refused, saying
    what the folder is instead)."""
    backend.create(folder).close()
    with pytest.raises(FileExistsError):
        backend.create(folder)
    with pytest.raises(Refused, match="这里没有区局"):
        backend.reopen(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_committed_writes_survive_close_and_reopen(backend: Backend, folder: Path) -> None:
    """What a transaction committed is there after ``close`` and ``open``; a fresh store is healthy."""
    s = backend.create(folder)
    assert s.quick_check() == "ok"
    with s.transaction():
        s.set_meta("hub_id", "360802")
        s.add_station("T1", "一镇", "township", "", T0)
    s.close()
    s = backend.reopen(folder)
    try:
        assert s.get_meta("hub_id") == "360802"
        assert s.station("T1") is not None
    finally:
        s.close()


# -- settings ----------------------------------------------------------------------------------


def test_meta_returns_default_when_unset_and_round_trips_values(store: HubStore) -> None:
    """``get_meta`` gives ``default`` for a missing key; ``set_meta`` upserts; ints, str, bytes, lists,
    maps come back equal."""
    assert store.get_meta("absent") is None
    assert store.get_meta("absent", 7) == 7
    values: dict[str, object] = {"seq": 12, "name": "测试区", "raw": b"\x00\xff", "l": [1, "a"], "m": {"k": 1}}
    with store.transaction():
        for k, v in values.items():
            store.set_meta(k, v)
        store.set_meta("seq", 13)
    assert {k: store.get_meta(k) for k in values} == {**values, "seq": 13}


# -- releases and operators ------------------------------------------------------------------------


def test_latest_release_is_the_highest_version(store: HubStore) -> None:
    """``latest_release`` is None before any release, then (version, frame) of the highest version,
    whatever the order they were added in; a version is stored once."""
    assert store.latest_release() is None
    with store.transaction():
        store.add_release(2, b"frame-2", "2026-03-02T09:00:00+08:00", "2026-08-29T09:00:00+08:00", T0)
        store.add_release(1, b"frame-1", "2026-03-01T09:00:00+08:00", "2026-08-28T09:00:00+08:00", T0)
    assert store.latest_release() == (2, b"frame-2")
    with pytest.raises(Exception), store.transaction():  # noqa: B017 - each backend raises its own type
        store.add_release(2, b"other", "", "", T0)
    assert store.latest_release() == (2, b"frame-2")


def test_operators_upsert_their_password_hash(store: HubStore) -> None:
    """``operator_hash`` is None for an unknown user; ``add_operator`` again replaces the hash."""
    assert store.operator_hash("admin") is None
    with store.transaction():
        store.add_operator("admin", "scrypt$one", T0)
    assert store.operator_hash("admin") == "scrypt$one"
    with store.transaction():
        store.add_operator("admin", "scrypt$two", T0 + 1)
    assert store.operator_hash("admin") == "scrypt$two"


# -- transactions and figures -----------------------------------------------------------------------


def test_an_exception_inside_a_transaction_writes_nothing(backend: Backend, store: HubStore) -> None:
    """Every write made inside ``transaction()`` is undone when the block raises, and the exception
    propagates unchanged."""

    class Boom(Exception):
        pass

    _station_tree(store)
    before = store.station("T1-V1")
    with pytest.raises(Boom), store.transaction():
        store.set_meta("hub_id", "360802")
        store.add_station("T3", "三镇", "township", "", T0)
        store.set_station_keys("T1-V1", KEY_A, SEAL_A, "kid", T0)
        store.seen("T1-V1", T0 + 9, backlog=3)
        store.revoke("T1-V2")
        store.add_token(H1, "T3", "township", T0)
        store.set_cursor("T1-V1", 1, Cursor(5, H1))
        _record(store, H1, 1, 4)
        store.quarantine("T1-V1", 1, 2, H1, b"raw", "why", T0)
        store.reject("test", "T1-V1", "why", T0)
        store.alert("fork", "T1-V1", "why", T0)
        store.add_release(1, b"frame", "", "", T0)
        store.add_operator("admin", "hash", T0)
        raise Boom
    assert store.get_meta("hub_id") is None
    assert store.station("T3") is None
    assert store.station("T1-V1") == before
    assert store.station("T1-V2").revoked is False  # type: ignore[union-attr]
    assert store.token(H1) is None
    assert store.cursor("T1-V1", 1) == Cursor()
    assert store.batch_receipt(H1) is None and store.applied_ranges("T1-V1", 1, 1, 100) == {}
    assert store.quarantined() == [] and store.rejections() == (0, []) and store.alerts() == []
    assert store.latest_release() is None and store.operator_hash("admin") is None


def test_a_transaction_commits_everything_together(store: HubStore) -> None:
    """Writes inside one ``transaction()`` are all visible once it returns."""
    with store.transaction():
        store.set_meta("seq", 1)
        store.add_token(H1, "T1", "township", T0)
        store.alert("fork", "T1", "x", T0)
    assert (store.get_meta("seq"), store.token(H1) is not None, len(store.alerts())) == (1, True, 1)


def test_count_knows_only_its_tables(store: HubStore) -> None:
    """The deprecated ``count`` answers for the figure tables (optionally filtered) and refuses any other
    name (kept while modules outside this branch call it: ``hub/store/figures.py``)."""
    with store.transaction():
        store.quarantine("T1-V1", 1, 1, H1, b"r", "a", T0)
        store.quarantine("T1-V1", 1, 2, H1, b"r", "b", T0)
    assert store.count("quarantine") == 2
    assert store.count("quarantine", "reason=?", ("a",)) == 1
    for table in ("applications", "conflicts", "rejected", "alerts", "batches", "changes"):
        assert store.count(table) == 0
    for bad in ("stations", "tokens", "operators", "quarantine; DROP TABLE stations"):
        with pytest.raises(ValueError):
            store.count(bad)


def test_named_figures_replace_counting_by_where_text(store: HubStore) -> None:
    """``open_conflicts`` and ``open_quarantine`` count what is still open; the deprecated ``count`` (kept
    for callers outside this branch) agrees with them."""
    with store.transaction():
        store.quarantine("T1-V1", 1, 1, H1, b"r", "a", T0)
        store.quarantine("T1-V1", 1, 2, H1, b"r", "b", T0)
    (first, _) = [int(str(q["id"])) for q in store.quarantined()]
    with store.transaction():
        store.settle_held(first, "released", "")
    assert store.open_quarantine() == 1 == store.count("quarantine", "state='open'")
    assert store.open_conflicts() == 0 == store.count("conflicts", "resolved=0")


# -- the rest of the whole store's interface ------------------------------------------------------------


def test_a_database_failure_leaves_a_transaction_as_the_stores_own_error(store: HubStore) -> None:
    """A transaction that cannot write (a broken constraint) raises ``StoreError``, a ``SanjiError`` with
    code ``store_failed`` keeping the driver's words; an error of the caller's passes unchanged."""
    with store.transaction():
        store.add_release(1, b"frame", "", "", T0)
    with pytest.raises(StoreError) as caught, store.transaction():
        store.add_release(1, b"again", "", "", T0)
    assert isinstance(caught.value, SanjiError) and caught.value.code == "store_failed" and str(caught.value)
    with pytest.raises(Refused), store.transaction():
        raise Refused("mine")


def test_ping_answers_and_a_closed_store_raises_the_stores_own_error(backend: Backend, folder: Path) -> None:
    """``ping`` returns on a working store and raises ``StoreError`` once the store is closed."""
    s = backend.create(folder)
    s.ping()
    s.close()
    with pytest.raises(StoreError):
        s.ping()


def test_data_version_moves_only_when_another_connection_commits(backend: Backend, folder: Path) -> None:
    """``data_version`` is unchanged by the store's own commits and changes once another store on the
    same database has committed (a USB import beside the serving hub)."""
    a = backend.create(folder)
    b = backend.reopen(folder)
    try:
        before = a.data_version()
        with a.transaction():
            a.set_meta("x", 1)
        assert a.data_version() == before
        with b.transaction():
            b.set_meta("x", 2)
        assert a.data_version() != before
    finally:
        a.close()
        b.close()


def test_a_group_transaction_commits_its_pieces_and_a_savepoint_undoes_one(store: HubStore) -> None:
    """``group_transaction``: ``begin``, pieces each in a ``savepoint`` (a failing one undone alone),
    ``commit``; ``rollback`` after ``begin`` undoes the group, and is harmless when none is open."""
    group = store.group_transaction()
    group.begin()
    with group.savepoint():
        store.set_meta("kept", 1)
    with pytest.raises(KeyError), group.savepoint():
        store.set_meta("undone", 1)
        raise KeyError("piece fails")
    group.commit()
    assert (store.get_meta("kept"), store.get_meta("undone")) == (1, None)
    group.begin()
    store.set_meta("kept", 2)
    group.rollback()
    group.rollback()
    assert store.get_meta("kept") == 1


def test_replica_parts_share_the_stores_database(store: HubStore) -> None:
    """``record_store`` and ``leaf_store`` work in the store's own transactions: what they write inside
    one is undone with it."""
    leaves = store.leaf_store("station:T1")
    with store.transaction():
        leaves.set_mark([1, 2])
    assert leaves.mark() == [1, 2]
    with pytest.raises(KeyError), store.transaction():
        leaves.set_mark([3, 4])
        raise KeyError("undo")
    assert leaves.mark() == [1, 2]
    records = store.record_store(lambda origin: 1)
    assert records.load("application", "nope") == {}


def test_releases_are_found_by_version_listed_and_signed_again(store: HubStore) -> None:
    """``release(version)`` is its frame or None; ``release_frames`` lists (version, frame) oldest first;
    ``replace_release_frame`` swaps one frame and nothing else."""
    with store.transaction():
        store.add_release(2, b"f2", "", "", T0)
        store.add_release(1, b"f1", "", "", T0)
    assert store.release(1) == b"f1" and store.release(3) is None
    with store.transaction():
        store.replace_release_frame(1, b"f1-resigned")
    assert store.release_frames() == [(1, b"f1-resigned"), (2, b"f2")]


def test_field_devices_revoked_codes_and_carried_status(store: HubStore) -> None:
    """``field_devices``: unrevoked field devices by code; ``revoked_codes``: every revoked station by
    code; ``carried_status`` is true only for a status newer than any carried before."""
    with store.transaction():
        for code in ("F2", "F1", "F3"):
            store.add_station(code, code, "field", "", T0)
        store.add_station("T1", "一镇", "township", "", T0)
        store.revoke("F3")
        store.revoke("T1")
    assert store.field_devices() == ["F1", "F2"] and store.revoked_codes() == ["F3", "T1"]
    with store.transaction():
        assert store.carried_status("F1", T0, 100)
        assert not store.carried_status("F1", T0, 100) and not store.carried_status("F1", T0, 50)
        assert store.carried_status("F1", T0, 101) and not store.carried_status("nobody", T0, 500)


def test_tokens_are_listed_per_station_and_all(store: HubStore) -> None:
    """``tokens_for(station)`` gives (hash, expires_ms, used_ms); ``token_hashes`` every stored hash."""
    with store.transaction():
        store.add_token(H1, "T1", "township", T0 + 10)
        store.add_token(H2, "T1", "township", T0 + 20)
        store.add_token(H3, "T2", "township", T0 + 30)
        store.use_token(H2, T0 + 5)
    assert sorted(store.tokens_for("T1")) == [(H1, T0 + 10, None), (H2, T0 + 20, T0 + 5)]
    assert sorted(store.token_hashes()) == [H1, H2, H3] and store.tokens_for("T9") == []


def test_delivered_says_whether_a_change_is_in_a_stations_feed(backend: Backend, store: HubStore) -> None:
    """``delivered(station, rowid)`` is true once that logged change was added to that station's feed."""
    change = Change("T1-V1", 1, 1, (T0 << 16) + 1, "application", "a", {"note": "x"}, {})
    (rowid,) = backend.log_changes(store, [change])
    assert not store.delivered("T1", rowid)
    with store.transaction():
        store.add_to_feed("T1", rowid)
    assert store.delivered("T1", rowid) and not store.delivered("T2", rowid)
