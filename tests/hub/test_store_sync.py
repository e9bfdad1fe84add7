"""The contract of :class:`hub.store.HubStore`, written once for every backend: what it keeps of the
sync traffic.

Cursors per (origin, epoch); batches recorded once with their result and receipt, and the applied ranges
that overlap a span of seqs; quarantined changes, rejected frames and alerts, in order; the feed of
changes each station is sent, paged after a cursor (the one place a backend hook logs changes first).
The rest of the contract and how backends are added are in ``test_store_contract``. Each test's
docstring states the contract point it checks.
"""

from __future__ import annotations

import pytest

from hub.store import HubStore
from sync.change import Change
from sync.session import Cursor

from .store_backends import H1, H2, H3, H4, T0, Backend, _record


def _change(seq: int, origin: str = "T1-V1", rid: str | None = None) -> Change:
    return Change(
        origin, 1, seq, (T0 << 16) + seq, "application", rid or f"app-{origin}-{seq}", {"note": f"第{seq}条"}, {}
    )


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
def test_applied_ranges_returns_every_overlapping_batch(
    store: HubStore, first: int, last: int, expected: set[tuple[int, int]]
) -> None:
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
    assert [
        (i["origin"], i["epoch"], i["seq"], i["reason"], i["created_ms"], bool(i["whole_batch"])) for i in items
    ] == [("T1-V1", 1, 7, "clock ahead", T0, False), ("T1-V2", 2, 1, "fork: overlap", T0 + 1, True)]
    assert items[0]["id"] != items[1]["id"]
    assert store.quarantined("resolved") == []
    assert store.quarantine_size() == 2


def test_open_held_rows_are_paged_by_id_and_settled_ones_left_out(store: HubStore) -> None:
    """``open_held_page(after_id, limit)``: (id, whole batch, raw) of open rows above ``after_id``, oldest
    first, at most ``limit``; released and rejected rows are not in it (hub/seal_prune.py)."""
    with store.transaction():
        store.quarantine("T1-V1", 1, 7, H1, b"raw-1", "clock ahead", T0)
        store.quarantine("T1-V2", 2, 1, H2, b"raw-frame", "fork: overlap", T0 + 1, whole_batch=True)
        store.quarantine("T1-V1", 1, 8, H1, b"raw-3", "clock ahead", T0 + 2)
    first, second, third = (int(i["id"]) for i in store.quarantined())
    with store.transaction():
        store.settle_held(first, "rejected", "驳回")
    assert store.open_held_page(0, 1) == [(second, True, b"raw-frame")]
    assert store.open_held_page(second, 10) == [(third, False, b"raw-3")]
    assert store.open_held_page(third, 10) == []


def test_rejections_are_newest_first_with_a_total(store: HubStore) -> None:
    """``rejections(limit)`` returns (total count, the newest ``limit`` rows newest first)."""
    codes = ("bad_signature", "unknown_key", "malformed", "stale", "wrong_recipient")
    with store.transaction():
        for n, code in enumerate(codes):
            store.reject("http:1.2.3.4", f"S{n}", f"{code}: reason {n}", T0 + n)
    total, rows = store.rejections(3)
    assert total == 5
    assert [r["origin"] for r in rows] == ["S4", "S3", "S2"]
    assert rows[0] == {
        "at_ms": T0 + 4,
        "source": "http:1.2.3.4",
        "origin": "S4",
        "reason": "wrong_recipient: reason 4",
        "count": 1,
    }
    assert store.rejections()[0] == 5 and len(store.rejections()[1]) == 5
    assert store.rejections()[0] == 5


def test_refusals_from_one_source_fold_into_one_row_per_hour_and_code(store: HubStore) -> None:
    """The same source, hour and reason code make one row that counts them and keeps the latest reason;
    a refused one moves to the top of the newest-first list again."""
    with store.transaction():
        for n in range(300):
            store.reject("http:203.0.113.9", f"S{n}", f"bad_signature: try {n}", T0 + n)
        store.reject("http:198.51.100.1", "T1-V1", "stale: clock", T0 + 400)
        store.reject("http:203.0.113.9", "S-last", "bad_signature: last", T0 + 500)
        store.reject("http:203.0.113.9", "S", "malformed: x", T0 + 600)
        store.reject("http:203.0.113.9", "S", "bad_signature: next hour", T0 + 3_600_000)
    total, rows = store.rejections()
    assert total == 304 and store.rejections()[0] == 304
    assert [(r["source"], r["reason"], r["count"]) for r in rows] == [
        ("http:203.0.113.9", "bad_signature: next hour", 1),
        ("http:203.0.113.9", "malformed: x", 1),
        ("http:203.0.113.9", "bad_signature: last", 301),
        ("http:198.51.100.1", "stale: clock", 1),
    ]
    assert rows[2]["origin"] == "S-last" and rows[2]["at_ms"] == T0 + 500


def test_past_the_hourly_row_cap_new_sources_share_one_row(store: HubStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender with many addresses cannot add rows without bound either."""
    from hub.store import refusals as refusal_log

    monkeypatch.setattr(refusal_log, "MAX_REFUSAL_ROWS_PER_HOUR", 10)
    with store.transaction():
        for n in range(500):
            store.reject(f"http:2001:db8::{n:x}", "", "malformed: junk", T0 + n)
    total, rows = store.rejections(100)
    assert total == 500 and len(rows) == 11
    assert rows[0]["source"] == refusal_log.OTHER_SOURCES and rows[0]["count"] == 490


def test_alerts_are_oldest_first(store: HubStore) -> None:
    """``alerts()`` lists every alert in the order raised, with at_ms, kind, station, detail and count."""
    with store.transaction():
        store.alert("fork", "T1-V1", "epoch 1 seqs 1-3", T0)
        store.alert("revoked_station_sent", "T1-V2", "revoked", T0 + 1)
    assert store.alerts() == [
        {"at_ms": T0, "kind": "fork", "station": "T1-V1", "detail": "epoch 1 seqs 1-3", "count": 1},
        {"at_ms": T0 + 1, "kind": "revoked_station_sent", "station": "T1-V2", "detail": "revoked", "count": 1},
    ]
    assert sum(int(str(a["count"])) for a in store.alerts()) == 2


def test_a_revoked_station_still_sending_is_counted_per_hour_but_every_fork_is_its_own_alert(store: HubStore) -> None:
    """Anyone can claim a revoked station's code without its key: those alerts are counted, not
    multiplied. A fork is raised once per forked batch and stays one row each."""
    with store.transaction():
        for n in range(50):
            store.alert("revoked_station_sent", "T1-V2", f"revoked {n}", T0 + n)
            store.alert("fork", "T1-V1", f"epoch 1 seqs {n}-{n}", T0 + n)
        store.alert("revoked_station_sent", "T1-V2", "an hour later", T0 + 3_600_000)
    alerts = store.alerts()
    revoked = [a for a in alerts if a["kind"] == "revoked_station_sent"]
    assert [(a["count"], a["detail"]) for a in revoked] == [(50, "revoked 49"), (1, "an hour later")]
    assert len([a for a in alerts if a["kind"] == "fork"]) == 50
    assert sum(int(str(a["count"])) for a in store.alerts()) == 101


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
