"""The contract of :class:`hub.store.HubStore`, written once for every backend: each origin's chain
(``hub/store/chains.py``) and the quarantine's lookups (``hub/store/quarantine.py``).

Receipts, horizons, the change log looked up by a change's place in its chain, how many seqs of a span
the hub holds, and the held rows as ingest, admission, reconciliation and the operator's review ask for
them. The rest of the contract and how backends are added are in ``test_store_contract``.
"""

from __future__ import annotations

import pytest

from hub.store import HubStore, StoreError
from protocol.codec import pack
from sync.change import Change
from sync.session import Cursor

from .store_backends import H1, H2, H3, T0, Backend, _record


def _change(seq: int, origin: str = "T1-V1", epoch: int = 1) -> Change:
    return Change(origin, epoch, seq, (T0 << 16) + seq, "application", f"app-{seq}", {"note": str(seq)}, {})


# -- receipts and horizons ----------------------------------------------------------------------------


def test_recent_receipts_are_one_origins_newest_first_up_to_a_limit(store: HubStore) -> None:
    """``recent_receipts(origin, limit)`` gives (hash, result, receipt) of that origin's batches, the
    most recently received first, at most ``limit``."""
    with store.transaction():
        for n, h in enumerate((H1, H2, H3)):
            store.record_batch(
                h, "T1-V1", 1, n + 1, n + 1, now_ms=T0 + n, result="applied", applied=1, quarantined=0,
                receipt=b"r" + h[:1], source="test",
            )  # fmt: skip
        _record(store, bytes([9]) * 32, 1, 1, origin="T1-V2")
    got = store.recent_receipts("T1-V1", 2)
    assert [tuple(r) for r in got] == [(H3, "applied", b"r\x03"), (H2, "applied", b"r\x02")]
    assert got[0].batch_hash == H3 and got[0].result == "applied"
    assert len(store.recent_receipts("T1-V1", 10)) == 3 and store.recent_receipts("T9", 10) == []


def test_horizon_is_the_furthest_feed_applied_before_a_seq(store: HubStore) -> None:
    """``note_horizon`` keeps the highest feed position per (station, epoch, seq); ``horizon(s, e, seq)``
    is the most any note below ``seq`` says, 0 when none does."""
    assert store.horizon("T1-V1", 1, 10) == 0
    with store.transaction():
        store.note_horizon("T1-V1", 1, 3, 40)
        store.note_horizon("T1-V1", 1, 3, 30)  # an older pull arriving late does not move it back
        store.note_horizon("T1-V1", 1, 6, 55)
        store.note_horizon("T1-V1", 2, 1, 99)
    assert store.horizon("T1-V1", 1, 3) == 0  # only notes below seq 3 count
    assert store.horizon("T1-V1", 1, 4) == 40
    assert store.horizon("T1-V1", 1, 7) == 55
    assert store.horizon("T1-V1", 2, 2) == 99 and store.horizon("T1-V2", 1, 7) == 0


def test_horizons_every_change_of_which_arrived_are_dropped_but_the_newest(store: HubStore) -> None:
    """Once the cursor is past them, only the newest such note is kept: it still answers for the seqs
    after it, which the older ones no longer need to."""
    with store.transaction():
        store.note_horizon("T1-V1", 1, 2, 10)
        store.note_horizon("T1-V1", 1, 4, 20)
        store.set_cursor("T1-V1", 1, Cursor(6, H1))  # seqs 1..5 arrived
        store.note_horizon("T1-V1", 1, 8, 30)
    assert store.horizon("T1-V1", 1, 9) == 30
    assert store.horizon("T1-V1", 1, 5) == 20
    assert store.horizon("T1-V1", 1, 3) == 0  # the note at seq 2 went: every change it spoke for arrived


# -- the change log by place in a chain -------------------------------------------------------------------


def test_logged_change_and_is_logged_find_a_change_by_its_place(backend: Backend, store: HubStore) -> None:
    """``logged_change(origin, epoch, seq)`` gives (hlc, entity, rid, packed fields, packed base) of the
    logged change there, else None; ``is_logged`` says whether there is one; ``last_change_rowid``
    is the newest log position (0 before any)."""
    assert store.last_change_rowid() == 0
    rowids = backend.log_changes(store, [_change(1), _change(2)])
    got = store.logged_change("T1-V1", 1, 2)
    assert got is not None and tuple(got) == ((T0 << 16) + 2, "application", "app-2", pack({"note": "2"}), pack({}))
    assert store.logged_change("T1-V1", 1, 3) is None and store.logged_change("T1-V1", 2, 1) is None
    assert store.is_logged("T1-V1", 1, 1) and not store.is_logged("T1-V2", 1, 1)
    assert store.last_change_rowid() == max(rowids)


def test_held_seqs_between_counts_logged_and_own_held_changes_once(backend: Backend, store: HubStore) -> None:
    """``held_seqs_between(origin, epoch, a, b)``: seqs in [a, b] logged or held as the origin sent
    them, each once; a whole batch held or a copy re-sent by another station does not count."""
    backend.log_changes(store, [_change(1), _change(2)])
    with store.transaction():
        store.quarantine("T1-V1", 1, 2, H1, b"dup-of-logged", "x", T0)  # logged too: counted once
        store.quarantine("T1-V1", 1, 3, H1, b"own", "x", T0)
        store.quarantine("T1-V1", 1, 4, H1, b"relayed", "x", T0, sender="T1-V2")
        store.quarantine("T1-V1", 1, 5, H1, b"frame", "fork", T0, whole_batch=True)
    assert store.held_seqs_between("T1-V1", 1, 1, 5) == 3
    assert store.held_seqs_between("T1-V1", 1, 2, 3) == 2
    assert store.held_seqs_between("T1-V1", 2, 1, 5) == 0


# -- the quarantine's lookups --------------------------------------------------------------------------


def test_held_lookups_tell_whole_batches_own_copies_and_relayed_ones_apart(store: HubStore) -> None:
    """``holds_whole_batch(hash)``; ``held_as_sent`` gives the raw change only when its origin sent it;
    ``holds_relayed(sender, raw)`` finds exactly that sender's copy; ``held_changes_of(origin)`` gives
    (raw, state) of every single change claiming that origin."""
    with store.transaction():
        store.quarantine("T1-V1", 1, 1, H1, b"frame", "fork", T0, whole_batch=True)
        store.quarantine("T1-V1", 1, 2, H2, b"own-2", "x", T0)
        store.quarantine("T1-V1", 1, 3, H2, b"relayed-3", "x", T0, sender="T1-V2")
    assert store.holds_whole_batch(H1) and not store.holds_whole_batch(H2)
    assert store.held_as_sent("T1-V1", 1, 2) == b"own-2"
    assert store.held_as_sent("T1-V1", 1, 3) is None and store.held_as_sent("T1-V1", 1, 1) is None
    assert store.holds_relayed("T1-V2", b"relayed-3") and not store.holds_relayed("T1-V1", b"relayed-3")
    assert not store.holds_relayed("T1-V2", b"own-2")
    assert sorted(store.held_changes_of("T1-V1")) == [(b"own-2", "open"), (b"relayed-3", "open")]


def test_own_held_raws_are_a_stations_own_copies_in_an_id_range(store: HubStore) -> None:
    """``own_held_raws(station, after_id, upto_id)``: raw changes held as ``station`` sent them, ids
    in (after_id, upto_id], oldest first; ``last_quarantine_id`` and ``quarantine_size`` follow."""
    assert store.last_quarantine_id() == 0 and store.quarantine_size() == 0
    with store.transaction():
        for n in range(1, 5):
            store.quarantine("T1-V1", 1, n, H1, f"raw-{n}".encode(), "x", T0)
        store.quarantine("T1-V2", 1, 1, H1, b"other", "x", T0, sender="T1-V1")  # re-sent for T1-V2
    assert store.own_held_raws("T1-V1") == [b"raw-1", b"raw-2", b"raw-3", b"raw-4"]
    ids = [int(str(q["id"])) for q in store.quarantined()]
    assert store.own_held_raws("T1-V1", ids[0], ids[2]) == [b"raw-2", b"raw-3"]
    assert store.own_held_raws("T1-V2") == []
    assert store.last_quarantine_id() == ids[-1] and store.quarantine_size() == 5


def test_settling_a_held_row_moves_it_out_of_the_open_ones(store: HubStore) -> None:
    """``held_entry(id)`` gives origin, epoch, seq, raw, whole_batch, state (None for an unknown id);
    ``settle_held`` records released or rejected with a note and refuses any other state."""
    with store.transaction():
        store.quarantine("T1-V1", 1, 7, H1, b"raw", "x", T0, code="builds_on_held")
    (qid,) = [int(str(q["id"])) for q in store.quarantined()]
    assert tuple(store.held_entry(qid) or ()) == ("T1-V1", 1, 7, b"raw", False, "open")
    assert store.held_entry(qid + 100) is None
    with pytest.raises(ValueError):
        store.settle_held(qid, "open", "")
    with store.transaction():
        store.settle_held(qid, "rejected", "驳回（测试）")
    assert store.held_entry(qid).state == "rejected"  # type: ignore[union-attr]
    assert store.quarantined() == [] and store.open_quarantine() == 0
    assert store.quarantine_listing(include_closed=True)[0].note == "驳回（测试）"


def test_waiting_changes_are_open_own_copies_with_a_waiting_code_in_chain_order(store: HubStore) -> None:
    """``waiting_changes(codes)``: open single changes held as their origin sent them, whose code is one
    of ``codes``, ordered by origin, epoch, seq; none for no codes."""
    with store.transaction():
        store.quarantine("T1-V2", 1, 5, H1, b"b5", "x", T0, code="unknown_base")
        store.quarantine("T1-V1", 1, 9, H1, b"a9", "x", T0, code="builds_on_held")
        store.quarantine("T1-V1", 1, 2, H1, b"a2", "x", T0, code="unknown_base")
        store.quarantine("T1-V1", 1, 3, H1, b"relayed", "x", T0, code="unknown_base", sender="T1-V2")
        store.quarantine("T1-V1", 1, 4, H1, b"other-code", "x", T0, code="clock_ahead")
    got = store.waiting_changes(("unknown_base", "builds_on_held"))
    assert [(w.origin, w.seq, w.raw) for w in got] == [("T1-V1", 2, b"a2"), ("T1-V1", 9, b"a9"), ("T1-V2", 5, b"b5")]
    assert store.waiting_changes(()) == []
    with store.transaction():
        store.settle_held(got[0].id, "released", "")
    assert [w.seq for w in store.waiting_changes(("unknown_base",))] == [5]


def test_quarantine_listing_is_open_first_newest_first_by_sender(store: HubStore) -> None:
    """``quarantine_listing``: open rows before settled ones, newest first within each; ``sender``
    picks what one station sent (its re-sent copies included); closed rows only when asked; ``limit``."""
    with store.transaction():
        store.quarantine("T1-V1", 1, 1, H1, b"1", "x", T0)
        store.quarantine("T1-V1", 1, 2, H1, b"2", "x", T0)
        store.quarantine("T1-V2", 1, 1, H1, b"3", "x", T0, sender="T1-V1")
        store.quarantine("T1-V2", 1, 2, H1, b"4", "x", T0)
    first = store.quarantine_listing(include_closed=True)[-1]
    with store.transaction():
        store.settle_held(first.id, "rejected", "no")
    assert [r.raw for r in store.quarantine_listing()] == [b"4", b"3", b"2"]
    assert [r.raw for r in store.quarantine_listing(include_closed=True)] == [b"4", b"3", b"2", b"1"]
    assert [(r.raw, r.sender) for r in store.quarantine_listing(sender="T1-V1")] == [(b"3", "T1-V1"), (b"2", "T1-V1")]
    assert [r.raw for r in store.quarantine_listing(include_closed=True, limit=2)] == [b"4", b"3"]


def test_a_write_that_breaks_a_constraint_raises_the_stores_own_error(store: HubStore) -> None:
    """A transaction whose write breaks a constraint (a batch recorded twice) raises ``StoreError``,
    whatever the backend's driver raised, and writes nothing."""
    with store.transaction():
        _record(store, H1, 1, 3)
    with pytest.raises(StoreError), store.transaction():
        store.set_cursor("T1-V1", 1, Cursor(9, H2))
        _record(store, H1, 1, 3)
    assert store.cursor("T1-V1", 1) == Cursor()
