"""A hub that kept one row per refusal before the counted refusal log is folded into it on upgrade:
the totals the operator sees stay what they were."""

from __future__ import annotations

import pytest
import sqlite_utils

from hub.schema import m005_refusals_per_address_hour
from hub.store.refusals import HOUR_MS
from tests.conftest import sqlite_only

T0 = 1_772_413_200_000  # on an hour boundary

# SQLite only, and said so in the test's id: it upgrades a SQLite hub made before the counted refusal
# log. hub/schema_pg.py starts from that log; its counting on PostgreSQL is the store contract's
# (test_store_sync.py, test_refusals_from_one_source_fold_into_one_row_per_hour_and_code).
pytestmark = [pytest.mark.usefixtures("hub_backend"), sqlite_only]


def test_old_rows_fold_into_one_per_source_hour_and_code() -> None:
    db = sqlite_utils.Database(memory=True)
    db.execute(
        "CREATE TABLE rejected (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, source TEXT NOT NULL,"
        " origin TEXT NOT NULL, reason TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE alerts (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
        " station TEXT NOT NULL, detail TEXT NOT NULL)"
    )
    old = [(T0 + n, "http:10.0.0.1", f"S{n}", f"bad_signature: try {n}") for n in range(40)]
    old += [
        (T0 + 100, "http:10.0.0.1", "T1", "stale: clock"),
        (T0 + 200, "file:a.sjb", "", "a reason with no code"),
        (T0 + HOUR_MS, "http:10.0.0.1", "S", "bad_signature: next hour"),
    ]
    db.conn.executemany("INSERT INTO rejected (at_ms, source, origin, reason) VALUES (?,?,?,?)", old)
    db.execute("INSERT INTO alerts (at_ms, kind, station, detail) VALUES (?, 'fork', 'T1-V1', 'x')", (T0,))

    m005_refusals_per_address_hour(db)

    rows = db.execute(
        "SELECT source, hour, code, count, first_ms, at_ms, origin, reason FROM rejected ORDER BY id"
    ).fetchall()
    assert rows == [
        ("http:10.0.0.1", T0 // HOUR_MS, "bad_signature", 40, T0, T0 + 39, "S39", "bad_signature: try 39"),
        ("http:10.0.0.1", T0 // HOUR_MS, "stale", 1, T0 + 100, T0 + 100, "T1", "stale: clock"),
        ("file:a.sjb", T0 // HOUR_MS, "other", 1, T0 + 200, T0 + 200, "", "a reason with no code"),
        (
            "http:10.0.0.1",
            T0 // HOUR_MS + 1,
            "bad_signature",
            1,
            T0 + HOUR_MS,
            T0 + HOUR_MS,
            "S",
            "bad_signature: next hour",
        ),
    ]
    assert db.execute("SELECT SUM(count) FROM rejected").fetchone()[0] == len(old)
    assert db.execute("SELECT count, hour FROM alerts").fetchall() == [(1, T0 // HOUR_MS)]
