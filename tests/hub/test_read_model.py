"""The contract of the hub's read model (``hub/reads``): what every query answers, and how the model
runs them (off the calling thread, read-only, a fresh snapshot per piece of work).

The data is made the way the hub makes it (``tests/ui/inproc.Pair``: a hub and an enrolled village in
one process, batches ingested for real); the few facts no story makes cheaply (a refusal, an alert, a
station's report of itself) are written through the store's own methods. A PostgreSQL backend must
answer every query here the same way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import enrolment
from hub.reads import ReadHub, ReadModel
from hub.reads.operator_store import OperatorStore
from node import commands
from sync.catalogue import catalogue_to_doc
from tests.ui.inproc import Pair

VILLAGE, TOWNSHIP = "360802-T01-01", "360802-T01"


@pytest.fixture(params=["sqlite", "postgres"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """The hub on either backend: every query must answer the same on both."""
    p = Pair(tmp_path, database=request.getfixturevalue("pg_dsn") if request.param == "postgres" else None)
    yield p
    p.close()


@pytest.fixture
def reads(pair: Pair) -> Iterator[ReadModel]:
    model = ReadModel(pair.hub)
    yield model
    model.close()


# -- how the model runs ---------------------------------------------------------------------------


def test_work_runs_in_the_models_threads_on_a_connection_that_cannot_write(reads: ReadModel) -> None:
    def where(hub: ReadHub) -> tuple[str, bool]:
        assert reads.current() is hub
        try:
            hub.conn.execute("DELETE FROM stations")
        except Exception as exc:  # sqlite3's OperationalError, or psycopg's ReadOnlySqlTransaction
            return threading.current_thread().name, "readonly" in str(exc) or "read-only" in str(exc)
        return threading.current_thread().name, False

    name, refused = reads.call(where)
    assert name.startswith("sanji-reads") and name != threading.current_thread().name
    assert refused, "a page's connection is read-only"
    assert reads.current() is None, "no work of the model runs on this thread"


def test_each_piece_of_work_sees_every_committed_write_and_one_snapshot(pair: Pair, reads: ReadModel) -> None:
    before = {s.code for s in reads.call(lambda hub: hub.reads.station_rows())}
    assert before == {TOWNSHIP, VILLAGE}

    def during(hub: ReadHub) -> tuple[int, int]:
        first = len(hub.reads.station_rows())
        # A write committed by the serving connection while the work is under way...
        with pair.hub.store.transaction():
            pair.hub.store.add_station("360802-T02", "二镇", "township", "", 0)
        return first, len(hub.reads.station_rows())

    first, again = reads.call(during)
    assert first == again == 2, "...is not seen half-way: the work reads one snapshot"
    assert len(reads.call(lambda hub: hub.reads.station_rows())) == 3, "the next piece of work sees it"


def test_who_is_who_is_read_again_for_each_piece_of_work(pair: Pair, reads: ReadModel) -> None:
    assert "360802-F01" not in reads.call(lambda hub: hub.tiers())
    enrolment.register(pair.hub, station="360802-F01", name="踏勘一号", tier="field")
    tiers = reads.call(lambda hub: hub.tiers())
    assert tiers["360802-F01"] == "field" and tiers[pair.hub.hub_id] == "district"


def test_the_trace_covers_every_connection_and_can_be_removed(reads: ReadModel) -> None:
    seen: list[str] = []
    reads.trace(seen.append)
    reads.call(lambda hub: hub.reads.releases())
    assert any("FROM releases" in s for s in seen)
    reads.trace(None)
    count = len(seen)
    reads.call(lambda hub: hub.reads.releases())
    assert len(seen) == count


def test_the_clock_and_keys_are_the_serving_hubs(pair: Pair, reads: ReadModel) -> None:
    pair.hub.clock = lambda: 1_234
    assert reads.call(lambda hub: hub.clock()) == 1_234
    assert reads.call(lambda hub: hub.keys) is pair.hub.keys


async def test_run_awaits_the_work_without_holding_the_loop(reads: ReadModel) -> None:
    started = threading.Event()

    def wait_for_the_loop(hub: ReadHub) -> int:
        started.set()
        assert ticked.wait(5), "the loop went on while the work ran"
        return len(hub.reads.station_rows())

    ticked = threading.Event()
    task = asyncio.ensure_future(reads.run(wait_for_the_loop))
    while not started.is_set():
        await asyncio.sleep(0.01)
    ticked.set()
    assert await task == 2


# -- stations, the overview, the station page ---------------------------------------------------------


def test_station_rows_report_what_each_station_last_said(pair: Pair, reads: ReadModel) -> None:
    with pair.hub.store.transaction():
        pair.hub.store.seen(VILLAGE, 5_000, backlog=3, catalogue_version=1, error="磁盘满", skew_ms=-2_500, via="usb")
        pair.hub.store.revoke(TOWNSHIP)
    rows = {s.code: s for s in reads.call(lambda hub: hub.reads.station_rows())}
    village, township = rows[VILLAGE], rows[TOWNSHIP]
    assert [village.tier, village.parent, township.parent] == ["village", TOWNSHIP, ""]
    assert village.enrolled and not township.enrolled, "only the village redeemed its token"
    assert township.revoked and not village.revoked
    assert (village.last_seen_ms, village.backlog, village.catalogue_version) == (5_000, 3, 1)
    assert (village.last_error, village.clock_skew_ms, village.last_via) == ("磁盘满", -2_500, "usb")
    assert township.last_seen_ms is None and township.catalogue_version == 0 and township.last_via == ""
    assert village.enrolled_ms is not None and village.registered_ms is not None


def test_applications_accepted_counts_a_range_of_acceptance_times(pair: Pair, reads: ReadModel) -> None:
    for _ in range(3):
        pair.accept()
    pair.push()
    accepted = [str(r["accepted_at"]) for r in commands.applications(pair.st)]
    assert reads.call(lambda hub: hub.reads.applications_accepted("0000", "9999")) == 3
    first = min(accepted)
    assert reads.call(lambda hub: hub.reads.applications_accepted(first, first)) == 0, "the end is excluded"
    assert reads.call(lambda hub: hub.reads.applications_accepted("0000", first)) == 0
    assert reads.call(lambda hub: hub.reads.applications_accepted(first, "9999")) == 3


def test_batches_and_receipts_of_a_station(pair: Pair, reads: ReadModel) -> None:
    pair.accept()
    pair.push()
    pair.accept()
    pair.accept()
    pair.push()
    receipts = reads.call(lambda hub: hub.reads.receipts_of(VILLAGE))
    assert len(receipts) == 2 and all(r.result == "applied" and len(r.hash) == 32 for r in receipts)
    assert receipts[0].first_seq > receipts[1].first_seq, "newest first"
    assert [r.applied for r in receipts] == [r.last_seq - r.first_seq + 1 for r in receipts]
    assert len(reads.call(lambda hub: hub.reads.receipts_of(VILLAGE, 1))) == 1
    batches = reads.call(lambda hub: hub.reads.batches_since(VILLAGE, 0))
    assert sorted(b.changes for b in batches) == sorted(r.last_seq - r.first_seq + 1 for r in receipts)
    latest = max(r.received_ms for r in receipts)
    assert reads.call(lambda hub: hub.reads.batches_since(VILLAGE, latest + 1)) == []
    assert reads.call(lambda hub: hub.reads.receipts_of(TOWNSHIP)) == []


def test_refusals_of_a_station_and_by_code(pair: Pair, reads: ReadModel) -> None:
    with pair.hub.store.transaction():
        pair.hub.store.reject("127.0.0.1", VILLAGE, "bad_signature: 签名不对", 7_200_000)
        pair.hub.store.reject("127.0.0.1", VILLAGE, "bad_signature: 签名不对", 7_200_001)
        pair.hub.store.reject("u盘", TOWNSHIP, "malformed: 文件损坏", 7_200_002)
    (mine,) = reads.call(lambda hub: hub.reads.refusals_of(VILLAGE))
    assert (mine.source, mine.count, mine.at_ms) == ("127.0.0.1", 2, 7_200_001)
    assert "签名不对" in mine.reason
    assert reads.call(lambda hub: hub.reads.refusals_by_code()) == {"bad_signature": 2, "malformed": 1}


def test_releases_newest_first(pair: Pair, reads: ReadModel) -> None:
    (only,) = reads.call(lambda hub: hub.reads.releases())
    assert only.version == 1 and only.issued_at < only.expires_at
    _, cat = pair.hub.catalogue()
    pair.hub.publish(catalogue_to_doc(cat))
    assert [r.version for r in reads.call(lambda hub: hub.reads.releases())] == [2, 1]
    assert [r.version for r in reads.call(lambda hub: hub.reads.releases(1))] == [2]


def test_audit_trail_newest_first(pair: Pair, reads: ReadModel) -> None:
    ops = OperatorStore(pair.hub.store.conn)
    with pair.hub.store.transaction():
        ops.add_audit(1, "liqiang", "login", "liqiang", remote="10.0.0.1")
        ops.add_audit(2, "liqiang", "revoke", VILLAGE, detail="d", reason="丢失")
    trail = reads.call(lambda hub: hub.reads.audit_trail())
    assert [(a.action, a.target, a.reason, a.remote) for a in trail] == [
        ("revoke", VILLAGE, "丢失", ""),
        ("login", "liqiang", "", "10.0.0.1"),
    ]
    assert len(reads.call(lambda hub: hub.reads.audit_trail(1))) == 1


# -- conflicts and quarantine -------------------------------------------------------------------------


def test_conflict_pages_and_counts_per_station(pair: Pair, reads: ReadModel) -> None:
    number = pair.conflict()
    page = dict(show_all=False, station="", older=None, newer=None, limit=10)
    rows = reads.call(lambda hub: hub.reads.conflict_page(**page))  # type: ignore[arg-type]
    assert rows and {r.station for r in rows} == {VILLAGE} and {r.number for r in rows} == {number}
    assert all(not r.resolved for r in rows)
    assert reads.call(lambda hub: hub.reads.conflicts_per_station(show_all=False)) == [(VILLAGE, len(rows))]
    other = {**page, "station": TOWNSHIP}
    assert reads.call(lambda hub: hub.reads.conflict_page(**other)) == []  # type: ignore[arg-type]
    last = rows[-1]
    older = {**page, "older": (str(last.detected_hlc), last.id)}
    assert reads.call(lambda hub: hub.reads.conflict_page(**older)) == []  # type: ignore[arg-type]
    newer = {**page, "newer": (str(last.detected_hlc - 1), "")}
    assert last in reads.call(lambda hub: hub.reads.conflict_page(**newer))  # type: ignore[arg-type]
    assert reads.call(lambda hub: hub.reads.conflict_page(**{**page, "limit": 1})) == rows[:1]  # type: ignore[arg-type]


def test_held_pages_and_counts_per_station(pair: Pair, reads: ReadModel) -> None:
    pair.quarantine()
    pair.quarantine()
    page = dict(show_all=False, station="", older=None, newer=None, limit=10)
    rows = reads.call(lambda hub: hub.reads.held_page(**page))  # type: ignore[arg-type]
    assert len(rows) == 2 and rows[0].id > rows[1].id and {r.state for r in rows} == {"open"}
    assert {r.sender for r in rows} == {VILLAGE} and all(r.raw for r in rows)
    assert reads.call(lambda hub: hub.reads.held_per_station(show_all=False)) == [(VILLAGE, 2)]
    older = {**page, "older": (str(rows[0].id), str(rows[0].id))}
    assert reads.call(lambda hub: hub.reads.held_page(**older)) == rows[1:]  # type: ignore[arg-type]
    mine = {**page, "station": VILLAGE}
    assert reads.call(lambda hub: hub.reads.held_page(**mine)) == rows  # type: ignore[arg-type]
    assert reads.call(lambda hub: hub.reads.held_page(**{**page, "station": TOWNSHIP})) == []  # type: ignore[arg-type]


# -- /metrics and the tracking page ----------------------------------------------------------------


def test_figures_for_metrics(pair: Pair, reads: ReadModel) -> None:
    assert reads.call(lambda hub: hub.reads.batches_by_result()) == {}
    pair.accept()
    pair.push()
    pair.quarantine()
    with pair.hub.store.transaction():
        pair.hub.store.alert("fork", VILLAGE, "同一序号两个批次", 1_000)
    by_result = reads.call(lambda hub: hub.reads.batches_by_result())
    assert sum(by_result.values()) == 2 and set(by_result) <= {"applied", "partial", "quarantined"}
    taken = reads.call(lambda hub: hub.reads.changes_taken())
    assert taken.applied >= 2 and taken.quarantined == 1
    assert reads.call(lambda hub: hub.reads.alerts_by_kind()) == {"fork": 1}


def test_received_ms_is_when_the_hub_took_the_creation(pair: Pair, reads: ReadModel) -> None:
    made = pair.accept()
    assert reads.call(lambda hub: hub.reads.received_ms(str(made["id"]))) is None, "not pushed yet"
    pair.push()
    (receipt,) = reads.call(lambda hub: hub.reads.receipts_of(VILLAGE))
    assert reads.call(lambda hub: hub.reads.received_ms(str(made["id"]))) == receipt.received_ms
    assert reads.call(lambda hub: hub.reads.received_ms("no-such-application")) is None


# -- the dashboard's own writes ----------------------------------------------------------------------


def test_operator_sessions(pair: Pair) -> None:
    ops = OperatorStore(pair.hub.store.conn)
    with pair.hub.store.transaction():
        ops.add_session(b"a" * 32, "liqiang", "csrf-1", 100, "10.0.0.1")
        ops.add_session(b"b" * 32, "liqiang", "csrf-2", 200, "10.0.0.2")
        ops.add_session(b"c" * 32, "wangfang", "csrf-3", 300, "10.0.0.3")
    found = ops.session(b"a" * 32)
    assert found is not None and (found.user, found.csrf, found.created_ms, found.seen_ms) == (
        "liqiang",
        "csrf-1",
        100,
        100,
    )
    assert ops.session(b"z" * 32) is None
    with pair.hub.store.transaction():
        ops.touch_session(b"a" * 32, 150)
    touched = ops.session(b"a" * 32)
    assert touched is not None and (touched.created_ms, touched.seen_ms) == (100, 150)
    with pair.hub.store.transaction():
        ops.end_sessions_idle_since(200)  # a (seen 150) goes; b (200) and c stay
    assert ops.session(b"a" * 32) is None and ops.session(b"b" * 32) is not None
    with pair.hub.store.transaction():
        assert ops.end_sessions_of("liqiang") == 1
        ops.end_session(b"c" * 32)
    assert ops.session(b"b" * 32) is None and ops.session(b"c" * 32) is None


def test_failed_logins_by_scope(pair: Pair) -> None:
    ops = OperatorStore(pair.hub.store.conn)
    with pair.hub.store.transaction():
        ops.add_failure("liqiang", "10.0.0.1", 10, forget_before_ms=0)
        ops.add_failure("liqiang", "10.0.0.2", 20, forget_before_ms=0)
        ops.add_failure("wangfang", "10.0.0.1", 30, forget_before_ms=0)

    def recent(scope: str, *, after: int = 0, limit: int = 10) -> list[int]:
        return ops.recent_failures(scope, "liqiang", "10.0.0.1", after_ms=after, limit=limit)

    assert recent("user_here") == [10]
    assert recent("address") == [30, 10] and recent("address", limit=1) == [30]
    assert recent("user") == [20, 10] and recent("user", after=10) == [20]
    with pair.hub.store.transaction():
        ops.add_failure("liqiang", "10.0.0.1", 40, forget_before_ms=10)  # forgets the one at 10
    assert recent("user_here") == [40]
    with pair.hub.store.transaction():
        ops.forget_failures("liqiang", "10.0.0.2")
    assert recent("user") == [40]
    with pair.hub.store.transaction():
        ops.forget_failures("liqiang")
    assert recent("user") == [] and recent("address") == [30]


def test_catalogue_drafts(pair: Pair) -> None:
    ops = OperatorStore(pair.hub.store.conn)
    with pair.hub.store.transaction():
        first = ops.add_draft("liqiang", 1, '{"items": []}', "目录.json", 5)
        second = ops.add_draft("liqiang", 1, "{}", "b.json", 6)
    assert first != second
    draft = ops.draft(first)
    assert draft is not None and (draft.base_version, draft.doc, draft.filename) == (1, '{"items": []}', "目录.json")
    with pair.hub.store.transaction():
        ops.drop_draft(first)
    assert ops.draft(first) is None and ops.draft(second) is not None
