"""The contract of :class:`hub.store.HubStore`, written once for every backend: the store as a whole.

The hub's ingest, feed and CLI code reach the database only through ``HubStore``; a second backend
(PostgreSQL, for a city-sized deployment) must pass this module, ``test_store_stations`` and
``test_store_sync`` unchanged. So the tests use only the store's public methods, plus one backend hook:
how changes get into the log (the hub logs them with ``replica.records.RecordStore`` on the store's
connection), since ``feed_page`` joins the log.

This module covers the store's lifecycle (create, open, reopen), settings, releases and operators,
transactions and the figures it counts. To add a backend, append a :class:`Backend` to ``BACKENDS`` in
``store_backends.py``. Each test's docstring states the contract point it checks. Values that a backend
may represent differently (SQLite's 0/1 for booleans) are compared through ``bool``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.store import HubStore
from replica.errors import Refused
from sync.session import Cursor

from .store_backends import H1, KEY_A, SEAL_A, T0, Backend, _record, _station_tree

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
    """``count`` answers for the figure tables (optionally filtered) and refuses any other name."""
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
