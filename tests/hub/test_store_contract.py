"""The contract of :class:`hub.store.HubStore`, written once for every backend.

The hub's ingest, feed and CLI code reach the database only through ``HubStore``; a second backend
(PostgreSQL, for a city-sized deployment) must pass this module unchanged. So the tests use only the
store's public methods, plus one backend hook: how changes get into the log (the hub logs them with
``replica.records.RecordStore`` on the store's connection), since ``feed_page`` joins the log.

To add a backend, append a :class:`Backend` to ``BACKENDS``. Each test's docstring states the contract
point it checks. Values that a backend may represent differently (SQLite's 0/1 for booleans) are
compared through ``bool``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.store import HubStore, Station
from replica.records import RecordStore
from sync.change import Change
from sync.session import Cursor

T0 = 1_772_413_200_000
KEY_A, KEY_B = bytes(range(32)), bytes(range(32, 64))
SEAL_A, SEAL_B = bytes(range(64, 96)), bytes(range(96, 128))
H1, H2, H3, H4 = (bytes([n]) * 32 for n in (1, 2, 3, 4))


@dataclass(frozen=True)
class Backend:
    name: str
    create: Callable[[Path], HubStore]
    reopen: Callable[[Path], HubStore]
    log_changes: Callable[[HubStore, Sequence[Change]], list[int]]


def _sqlite_log(store: HubStore, changes: Sequence[Change]) -> list[int]:
    with store.transaction():
        result = RecordStore(store.db, lambda origin: 1).apply(list(changes))
    return [rowid for rowid, _, _ in result.logged]


BACKENDS = [Backend("sqlite", HubStore.create, HubStore.open, _sqlite_log)]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "hub"


@pytest.fixture
def store(backend: Backend, folder: Path) -> Iterator[HubStore]:
    s = backend.create(folder)
    yield s
    s.close()


def _station_tree(store: HubStore) -> None:
    with store.transaction():
        store.add_station("T1", "一镇", "township", "", T0)
        store.add_station("T1-V1", "一村", "village", "T1", T0)
        store.add_station("T1-V2", "二村", "village", "T1", T0)
        store.add_station("T2", "二镇", "township", "", T0)
        store.add_station("T2-V1", "三村", "village", "T2", T0)


def _change(seq: int, origin: str = "T1-V1", rid: str | None = None) -> Change:
    return Change(origin, 1, seq, (T0 << 16) + seq, "application", rid or f"app-{origin}-{seq}",
                  {"note": f"第{seq}条"}, {})


# -- lifecycle ---------------------------------------------------------------------------------


def test_create_refuses_an_existing_store_and_open_refuses_a_missing_one(backend: Backend, folder: Path,
                                                                         tmp_path: Path) -> None:
    """``create`` never adopts an existing hub (FileExistsError); ``open`` never makes one (FileNotFoundError)."""
    backend.create(folder).close()
    with pytest.raises(FileExistsError):
        backend.create(folder)
    with pytest.raises(FileNotFoundError):
        backend.reopen(tmp_path / "nowhere")


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


# -- stations ----------------------------------------------------------------------------------


def test_a_new_station_has_no_keys_and_neutral_figures(store: HubStore) -> None:
    """A registered station: given name/tier/parent, no keys, not revoked, never seen, zero figures."""
    _station_tree(store)
    assert store.station("T1-V1") == Station(
        code="T1-V1", name="一村", tier="village", parent="T1", sign_pub=None, seal_pub=None, revoked=False,
        last_seen_ms=None, backlog=0, catalogue_version=0, feed_ack=0, last_error="",
    )
    assert store.station("nobody") is None


def test_stations_are_listed_by_code(store: HubStore) -> None:
    """``stations()`` lists every station ordered by code."""
    with store.transaction():
        for code in ("T2", "T1-V2", "T1", "T1-V1"):
            store.add_station(code, code, "township", "", T0)
    assert [s.code for s in store.stations()] == ["T1", "T1-V1", "T1-V2", "T2"]


def test_add_station_upserts_name_tier_parent_and_keeps_keys_and_revocation(store: HubStore) -> None:
    """``add_station`` on an existing code updates name, tier and parent but keeps pinned keys and the
    revocation flag (a re-registration is not a re-enrolment)."""
    _station_tree(store)
    with store.transaction():
        store.set_station_keys("T1-V1", KEY_A, SEAL_A, "kid-a", T0)
        store.revoke("T1-V1")
        store.add_station("T1-V1", "一村(新名)", "community", "T2", T0 + 5)
    st = store.station("T1-V1")
    assert st is not None
    assert (st.name, st.tier, st.parent) == ("一村(新名)", "community", "T2")
    assert (st.sign_pub, st.seal_pub, st.revoked) == (KEY_A, SEAL_A, True)
    assert len(store.stations()) == 5


def test_set_station_keys_pins_keys_and_lifts_revocation(store: HubStore) -> None:
    """``set_station_keys`` replaces both public keys and clears ``revoked``: re-enrolment issues new keys."""
    _station_tree(store)
    with store.transaction():
        store.set_station_keys("T1-V1", KEY_A, SEAL_A, "kid-a", T0)
        assert store.revoke("T1-V1") is True
    assert store.station("T1-V1").revoked is True  # type: ignore[union-attr]
    with store.transaction():
        store.set_station_keys("T1-V1", KEY_B, SEAL_B, "kid-b", T0 + 1)
    st = store.station("T1-V1")
    assert st is not None and (st.sign_pub, st.seal_pub, st.revoked) == (KEY_B, SEAL_B, False)


def test_revoke_reports_whether_the_station_exists(store: HubStore) -> None:
    """``revoke`` returns True for a known station (and marks it), False for an unknown code (and
    creates nothing)."""
    _station_tree(store)
    with store.transaction():
        assert store.revoke("T2-V1") is True
        assert store.revoke("T9") is False
    assert store.station("T2-V1").revoked is True  # type: ignore[union-attr]
    assert store.station("T9") is None
    assert [s.code for s in store.stations() if s.revoked] == ["T2-V1"]


def test_seen_updates_only_what_it_is_given(store: HubStore) -> None:
    """``seen`` always sets ``last_seen_ms``; every other figure passed as None keeps its value
    (COALESCE); ``feed_ack`` only moves forward; an empty error string clears the last error."""
    _station_tree(store)
    with store.transaction():
        store.seen("T1-V1", T0 + 1, backlog=5, catalogue_version=2, feed_ack=40, error="网络中断", skew_ms=-300)
    st = store.station("T1-V1")
    assert st is not None
    assert (st.last_seen_ms, st.backlog, st.catalogue_version, st.feed_ack, st.last_error) == (
        T0 + 1, 5, 2, 40, "网络中断")
    with store.transaction():
        store.seen("T1-V1", T0 + 2)
    st = store.station("T1-V1")
    assert st is not None
    assert (st.last_seen_ms, st.backlog, st.catalogue_version, st.feed_ack, st.last_error) == (
        T0 + 2, 5, 2, 40, "网络中断")
    with store.transaction():
        store.seen("T1-V1", T0 + 3, backlog=0, feed_ack=10, error="")
    st = store.station("T1-V1")
    assert st is not None
    assert (st.last_seen_ms, st.backlog, st.feed_ack, st.last_error) == (T0 + 3, 0, 40, "")
    with store.transaction():
        store.seen("T1-V1", T0 + 4, feed_ack=41)
    assert store.station("T1-V1").feed_ack == 41  # type: ignore[union-attr]


def test_seen_for_an_unknown_station_changes_nothing(store: HubStore) -> None:
    """``seen`` never creates a station."""
    with store.transaction():
        store.seen("ghost", T0, backlog=3)
    assert store.station("ghost") is None
    assert store.stations() == []


def test_tiers_and_children(store: HubStore) -> None:
    """``tiers`` maps every station code to its tier; ``children`` lists the codes whose parent is the
    given station (order unspecified), empty for a leaf or an unknown code."""
    _station_tree(store)
    assert store.tiers() == {"T1": "township", "T1-V1": "village", "T1-V2": "village", "T2": "township",
                             "T2-V1": "village"}
    assert sorted(store.children("T1")) == ["T1-V1", "T1-V2"]
    assert store.children("T2") == ["T2-V1"]
    assert store.children("T1-V1") == []
    assert store.children("nobody") == []


# -- tokens ------------------------------------------------------------------------------------


def test_token_lookup_by_hash(store: HubStore) -> None:
    """``token`` returns (station, tier, expires_ms, used_ms) with used_ms None until used; None for an
    unknown hash; ``tokens_for`` lists a station's tokens."""
    with store.transaction():
        store.add_token(H1, "T1-V1", "village", T0 + 1000)
        store.add_token(H2, "T1-V1", "village", T0 + 2000)
        store.add_token(H3, "T2", "township", T0 + 3000)
    assert store.token(H1) == ("T1-V1", "village", T0 + 1000, None)
    assert store.token(H4) is None
    assert sorted(store.tokens_for("T1-V1")) == [(H1, T0 + 1000, None), (H2, T0 + 2000, None)]
    assert store.tokens_for("nobody") == []


def test_tokens_work_once(store: HubStore) -> None:
    """``use_token`` is True the first time only, and records when; an unknown token is False."""
    with store.transaction():
        store.add_token(H1, "T1-V1", "village", T0 + 1000)
        assert store.use_token(H1, T0 + 10) is True
        assert store.use_token(H1, T0 + 20) is False
        assert store.use_token(H4, T0 + 20) is False
    assert store.token(H1) == ("T1-V1", "village", T0 + 1000, T0 + 10)
    assert store.tokens_for("T1-V1") == [(H1, T0 + 1000, T0 + 10)]


def test_a_token_hash_is_stored_once(store: HubStore) -> None:
    """Adding the same token hash twice fails (and the failed transaction leaves the first intact)."""
    with store.transaction():
        store.add_token(H1, "T1-V1", "village", T0)
    with pytest.raises(Exception), store.transaction():  # noqa: B017 - each backend raises its own type
        store.add_token(H1, "T2", "township", T0)
    assert store.token(H1) == ("T1-V1", "village", T0, None)


# -- cursors and batches -------------------------------------------------------------------------


def test_cursor_defaults_to_the_start_of_a_chain(store: HubStore) -> None:
    """An (origin, epoch) never seen has ``Cursor()``: next seq 1, previous hash 32 zero bytes."""
    assert store.cursor("T1-V1", 1) == Cursor()
    assert store.cursor("T1-V1", 1) == Cursor(1, bytes(32))


def test_cursor_set_get_is_per_origin_and_epoch(store: HubStore) -> None:
    """``set_cursor`` upserts the cursor of exactly one (origin, epoch)."""
    with store.transaction():
        store.set_cursor("T1-V1", 1, Cursor(4, H1))
        store.set_cursor("T1-V1", 2, Cursor(2, H2))
        store.set_cursor("T1-V1", 1, Cursor(9, H3))
    assert store.cursor("T1-V1", 1) == Cursor(9, H3)
    assert store.cursor("T1-V1", 2) == Cursor(2, H2)
    assert store.cursor("T1-V2", 1) == Cursor()


def _record(store: HubStore, h: bytes, first: int, last: int, *, origin: str = "T1-V1", epoch: int = 1,
            result: str = "applied") -> None:
    store.record_batch(h, origin, epoch, first, last, now_ms=T0, result=result, applied=last - first + 1,
                       quarantined=0, receipt=b"receipt:" + h[:1], source="test")


def test_batch_receipt_returns_result_and_receipt(store: HubStore) -> None:
    """``batch_receipt`` gives back (result, receipt) exactly as recorded; None for an unknown hash."""
    with store.transaction():
        _record(store, H1, 1, 3)
        _record(store, H2, 4, 4, result="quarantined")
    assert store.batch_receipt(H1) == ("applied", b"receipt:\x01")
    assert store.batch_receipt(H2) == ("quarantined", b"receipt:\x02")
    assert store.batch_receipt(H4) is None


def test_a_batch_hash_is_recorded_once(store: HubStore) -> None:
    """Recording the same batch hash twice fails: a batch is taken once."""
    with store.transaction():
        _record(store, H1, 1, 3)
    with pytest.raises(Exception), store.transaction():  # noqa: B017 - each backend raises its own type
        _record(store, H1, 1, 3)
    assert store.batch_receipt(H1) == ("applied", b"receipt:\x01")


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (5, 5, {(4, 6)}),  # inside one batch
        (3, 4, {(1, 3), (4, 6)}),  # straddles a boundary: both, boundaries inclusive
        (6, 7, {(4, 6), (7, 9)}),
        (1, 9, {(1, 3), (4, 6), (7, 9)}),  # covers all
        (0, 0, set()),  # before the first
        (10, 12, set()),  # after the last
        (9, 100, {(7, 9)}),
    ],
)
def test_applied_ranges_returns_every_overlapping_batch(store: HubStore, first: int, last: int,
                                                        expected: set[tuple[int, int]]) -> None:
    """``applied_ranges(origin, epoch, a, b)`` maps (first_seq, last_seq) -> hash for every batch of that
    origin and epoch whose range intersects [a, b] (inclusive ends); other origins and epochs never show."""
    with store.transaction():
        _record(store, H1, 1, 3)
        _record(store, H2, 4, 6)
        _record(store, H3, 7, 9)
        _record(store, H4, 1, 100, origin="T1-V2")
        _record(store, bytes([5]) * 32, 1, 100, epoch=2)
    got = store.applied_ranges("T1-V1", 1, first, last)
    assert set(got) == expected
    hashes = {(1, 3): H1, (4, 6): H2, (7, 9): H3}
    assert all(got[r] == hashes[r] for r in got)


# -- quarantine, rejections, alerts ---------------------------------------------------------------


def test_quarantine_lists_open_items_in_arrival_order(store: HubStore) -> None:
    """``quarantine`` keeps an item with its reason; ``quarantined()`` lists open items oldest first with
    id, origin, epoch, seq, reason, created_ms and whole_batch; no other state has items yet."""
    with store.transaction():
        store.quarantine("T1-V1", 1, 7, H1, b"raw-change", "clock ahead", T0)
        store.quarantine("T1-V2", 2, 1, H2, b"raw-frame", "fork: overlap", T0 + 1, whole_batch=True)
    items = store.quarantined()
    assert [(i["origin"], i["epoch"], i["seq"], i["reason"], i["created_ms"], bool(i["whole_batch"]))
            for i in items] == [("T1-V1", 1, 7, "clock ahead", T0, False),
                                ("T1-V2", 2, 1, "fork: overlap", T0 + 1, True)]
    assert items[0]["id"] != items[1]["id"]
    assert store.quarantined("resolved") == []
    assert store.count("quarantine") == 2


def test_rejections_are_newest_first_with_a_total(store: HubStore) -> None:
    """``rejections(limit)`` returns (total count, the newest ``limit`` rows newest first)."""
    with store.transaction():
        for n in range(5):
            store.reject("http:1.2.3.4", f"S{n}", f"reason {n}", T0 + n)
    total, rows = store.rejections(3)
    assert total == 5
    assert [r["origin"] for r in rows] == ["S4", "S3", "S2"]
    assert rows[0] == {"at_ms": T0 + 4, "source": "http:1.2.3.4", "origin": "S4", "reason": "reason 4"}
    assert store.rejections()[0] == 5 and len(store.rejections()[1]) == 5
    assert store.count("rejected") == 5


def test_alerts_are_oldest_first(store: HubStore) -> None:
    """``alerts()`` lists every alert in the order raised, with at_ms, kind, station and detail."""
    with store.transaction():
        store.alert("fork", "T1-V1", "epoch 1 seqs 1-3", T0)
        store.alert("revoked_station_sent", "T1-V2", "revoked", T0 + 1)
    assert store.alerts() == [
        {"at_ms": T0, "kind": "fork", "station": "T1-V1", "detail": "epoch 1 seqs 1-3"},
        {"at_ms": T0 + 1, "kind": "revoked_station_sent", "station": "T1-V2", "detail": "revoked"},
    ]
    assert store.count("alerts") == 2


# -- feeds ---------------------------------------------------------------------------------------


def test_feed_pages_are_oldest_first_after_a_cursor(backend: Backend, store: HubStore) -> None:
    """``feed_page(station, after, limit)`` returns up to ``limit`` (log rowid, wire change) of that
    station's feed with rowid > ``after``, in rowid order; fields and base come back decoded."""
    rowids = backend.log_changes(store, [_change(n) for n in range(1, 6)])
    assert rowids == sorted(rowids)
    with store.transaction():
        for rowid in reversed(rowids):  # the order of fan-out does not matter, only the log order
            store.add_to_feed("T1", rowid)
        store.add_to_feed("T2", rowids[0])
    page = store.feed_page("T1", 0, 100)
    assert [r for r, _ in page] == rowids
    assert page[0][1] == ["T1-V1", 1, 1, (T0 << 16) + 1, "application", "app-T1-V1-1", {"note": "第1条"}, {}]
    assert [r for r, _ in store.feed_page("T1", 0, 2)] == rowids[:2]
    assert [r for r, _ in store.feed_page("T1", rowids[1], 2)] == rowids[2:4]
    assert store.feed_page("T1", rowids[-1], 100) == []
    assert [r for r, _ in store.feed_page("T2", 0, 100)] == rowids[:1]
    assert store.feed_page("T1-V1", 0, 100) == []


def test_add_to_feed_is_idempotent(backend: Backend, store: HubStore) -> None:
    """Adding the same (station, change) twice puts it in the feed once."""
    (rowid,) = backend.log_changes(store, [_change(1)])
    with store.transaction():
        store.add_to_feed("T1", rowid)
        store.add_to_feed("T1", rowid)
    with store.transaction():
        store.add_to_feed("T1", rowid)
    assert [r for r, _ in store.feed_page("T1", 0, 10)] == [rowid]


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
