"""``RecordStore.run()``: changes merged in memory and each record written once must leave exactly the
tables that applying the changes one call at a time leaves (the hub's ingest and the benchmarks rely on
it), whether or not the records were prefetched."""

from __future__ import annotations

from pathlib import Path

from replica.db import transaction
from replica.records import RecordStore
from tests.replica.test_records import TIERS, _db, history


def _tables(store: RecordStore) -> list[list[tuple[object, ...]]]:
    return [
        store.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
        for t in ("records", "changes", "applications", "conflicts")
    ]


def test_one_run_leaves_what_one_call_per_change_leaves(tmp_path: Path) -> None:
    changes = history()
    one = RecordStore(_db(tmp_path / "one.db"), lambda o: TIERS.get(o, 0))
    for c in changes:
        with transaction(one.db):
            one.apply([c])
    for prefetch in (False, True):
        many = RecordStore(_db(tmp_path / f"run-{prefetch}.db"), lambda o: TIERS.get(o, 0))
        with transaction(many.db):
            run = many.run()
            if prefetch:
                run.prefetch([(c.entity, c.id) for c in changes])
            for c in changes:
                run.add(c)
            applied = run.finish()
        assert applied.applied == len(changes)
        assert _tables(many) == _tables(one)
        with transaction(many.db):
            again = many.run()
            assert all(again.add(c) is None for c in changes)  # every one a duplicate now
            assert again.finish().duplicates == len(changes)
