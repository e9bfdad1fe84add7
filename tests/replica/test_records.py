"""``replica.records.RecordStore``: the fold applied to SQLite, shared by node and hub.

A change is logged once however often it arrives; the merged state depends only on the set of
changes, not on their order; the application projection follows the merged record; concurrent edits
leave one conflict record.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from replica import records
from replica.db import connect, transaction
from replica.records import RecordStore
from sync.change import Change
from tests.conftest import make_id

T = 1_772_413_200_000 << 16
APPLICANT_ID = make_id(11)
TIERS = {"T1": 2, "T1-V1": 1, "T1-V2": 1, "360802": 3}


def _db(path: Path) -> sqlite_utils.Database:
    db = connect(path)
    records.migrations.apply(db)
    return db


@pytest.fixture
def rs(tmp_path: Path) -> Iterator[RecordStore]:
    db = _db(tmp_path / "r.db")
    yield RecordStore(db, lambda o: TIERS.get(o, 0))
    db.conn.close()


def _apply(store: RecordStore, changes: list[Change]) -> records.Applied:
    with transaction(store.db):
        return store.apply(changes)


def history() -> list[Change]:
    a = "app-1"
    return [
        Change(
            "T1-V1",
            1,
            1,
            T + 1,
            "application",
            a,
            {
                "number": "T1-V1-20260302-00001",
                "station": "T1-V1",
                "item": "360802-0010",
                "status": "accepted",
                "applicant_name": "测试申请人0001",
                "applicant_id": APPLICANT_ID,
                "m.银行卡": ["deferred", "2026-03-09"],
            },
            {},
        ),
        Change("T1-V1", 1, 2, T + 5, "event", "ev-1", {"application": a, "action": "accept", "actor": "T1-V1"}, {}),
        Change("T1", 1, 1, T + 9, "application", a, {"status": "under_review", "note": "镇审查"}, {"status": T + 1}),
        # Concurrent with the township's note: the village had not seen it (base older than its hlc).
        Change(
            "T1-V1",
            1,
            3,
            T + 7,
            "application",
            a,
            {"note": "村备注", "m.银行卡": ["supplemented", ""]},
            {"m.银行卡": T + 1},
        ),
        Change("360802", 1, 1, T + 20, "application", a, {"status": "approved", "decision": "准予"}, {"status": T + 9}),
    ]


def _state(store: RecordStore) -> tuple[object, ...]:
    conn = store.conn
    return (
        conn.execute("SELECT entity, id, state, application FROM records ORDER BY entity, id").fetchall(),
        conn.execute("SELECT * FROM applications").fetchall(),
        conn.execute("SELECT id, field, rule FROM conflicts ORDER BY id").fetchall(),
    )


def test_each_change_is_logged_once_however_often_it_arrives(rs: RecordStore) -> None:
    changes = history()
    first = _apply(rs, changes)
    assert (first.applied, first.duplicates) == (5, 0)
    assert [c for _, c, _ in first.logged] == changes
    assert {app for _, _, app in first.logged} == {"app-1"}  # an event belongs to its application
    state = _state(rs)
    again = _apply(rs, changes + changes[:2])
    assert (again.applied, again.duplicates, again.logged) == (0, 7, ())
    assert _state(rs) == state
    assert rs.conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0] == 5


@pytest.mark.parametrize("seed", range(5))
def test_the_merged_state_does_not_depend_on_arrival_order(tmp_path: Path, seed: int) -> None:
    changes = history()
    shuffled = changes[:]
    random.Random(seed).shuffle(shuffled)
    stores = []
    for name, order in (("a", changes), ("b", shuffled)):
        db = _db(tmp_path / f"{name}.db")
        store = RecordStore(db, lambda o: TIERS.get(o, 0))
        for c in order:  # one at a time, as changes trickle in from different peers
            _apply(store, [c])
        stores.append(store)
    try:
        a, b = (_state(s) for s in stores)
        assert a[0] == b[0] and a[2] == b[2]
        # The projection's columns agree too (updated_hlc included).
        assert a[1] == b[1]
    finally:
        for s in stores:
            s.conn.close()


def test_the_application_projection_follows_the_merged_record(rs: RecordStore) -> None:
    _apply(rs, history())
    row = rs.conn.execute(
        "SELECT number, station, item, status, decision, note, applicant_id, updated_hlc FROM applications"
    ).fetchone()
    assert row == ("T1-V1-20260302-00001", "T1-V1", "360802-0010", "approved", "准予", "镇审查", APPLICANT_ID, T + 20)
    assert rs.values("application", "app-1")["m.银行卡"] == ["supplemented", ""]
    assert rs.values("event", "ev-1")["action"] == "accept"
    assert rs.values("application", "missing") == {}


def test_concurrent_edits_leave_one_conflict_record(rs: RecordStore) -> None:
    _apply(rs, history())
    ((record, field, rule),) = rs.conn.execute("SELECT record, field, rule FROM conflicts").fetchall()
    assert (record, field) == ("app-1", "note") and "last writer wins" in rule
    _apply(rs, list(reversed(history())))  # seen again in another order: still one
    assert rs.conn.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 1


def test_history_is_the_audit_trail_in_clock_order(rs: RecordStore) -> None:
    _apply(rs, list(reversed(history())))
    trail = rs.history("app-1")
    assert [h["hlc"] for h in trail] == sorted(h["hlc"] for h in trail)
    assert [(h["origin"], h["entity"]) for h in trail] == [
        ("T1-V1", "application"),
        ("T1-V1", "event"),
        ("T1-V1", "application"),
        ("T1", "application"),
        ("360802", "application"),
    ]
    assert {e for e, _, _ in rs.records_of("app-1")} == {"application", "event"}
