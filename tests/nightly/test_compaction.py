"""Compaction: the nightly job drops what nobody needs any more, never what anti-entropy or a station
whose batches the hub has not receipted still needs."""

from __future__ import annotations

import pytest

from node import nightly as node_nightly
from node.station import Station
from replica.ids import now_ms
from tests.applicants import People
from tests.conftest import sqlite_only

from .conftest import District, Node, ok, run_sanji

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

IMMEDIATE = "360802-0001"


def outbox(node: Node) -> list[tuple[str, int]]:
    conn = node.db()
    try:
        return [
            (str(s), int(n))
            for s, n in conn.execute("SELECT state, length(frame) FROM outbox ORDER BY epoch, first_seq").fetchall()
        ]
    finally:
        conn.close()


def change_count(node: Node) -> int:
    conn = node.db()
    try:
        return int(conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0])
    finally:
        conn.close()


def compact_now(node: Node, retention_days: int = 0) -> int:
    """`node.nightly.compact` with the station's clock a minute ahead, so that batches receipted a
    moment ago are past a retention of 0 days."""
    st = Station(node.dir, clock=lambda: now_ms() + 60_000)
    try:
        return node_nightly.compact(st, retention_days=retention_days)
    finally:
        st.close()


def test_compaction_keeps_unreceipted_batches_and_reconcile_finds_nothing(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, IMMEDIATE)
        a.sync()
        a.accept(people, IMMEDIATE)
        a.sync()
        d.hub.stop()
        a.accept(people, IMMEDIATE)  # the hub is down: this batch stays unreceipted
        assert run_sanji("node", "sync", a.dir).code == 3
        before = outbox(a)
        assert [s for s, _ in before] == ["receipted", "receipted", "pending"]
        changes = change_count(a)

        assert compact_now(a) == 2
        after = outbox(a)
        assert [s for s, _ in after] == ["receipted", "receipted", "pending"]
        assert [n for s, n in after if s == "receipted"] == [0, 0], "receipted frames are emptied"
        assert after[2][1] == before[2][1] > 0, "the unreceipted batch is kept byte for byte"
        assert change_count(a) == changes, "the changes themselves are never compacted"
        assert compact_now(a) == 0, "compaction is idempotent"

        d.hub.start()
        got = a.reconcile()  # pushes what is pending first, then compares
        assert (got["divergent"], got["repaired"], got["summary_match"]) == (0, 0, True)
        assert [s for s, _ in outbox(a)] == ["receipted"] * 3
        assert d.hub_view(a.code) == a.view()
        assert a.status()["pending"] == 0


def test_a_retention_period_keeps_recent_frames(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, IMMEDIATE)
        a.sync()
    assert compact_now(a, retention_days=30) == 0
    assert [n > 0 for _, n in outbox(a)] == [True]


# Regression (a strict xfail until the bug was fixed).
@sqlite_only  # `hub backup`/`restore` copy hub.db; on PostgreSQL they refuse by design (pg_dump)
def test_compaction_then_hub_restore_settles(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, IMMEDIATE)
        a.sync()
        ok("hub", "backup", d.hub_dir, "--out", d.root / "hub-backup.db")
        for _ in range(2):
            a.accept(people, IMMEDIATE)
            a.sync()
        assert compact_now(a) == 3
    ok("hub", "restore", d.hub_dir, "--from", d.root / "hub-backup.db")
    with d.hub.serving():
        a.accept(people, IMMEDIATE)
        run_sanji("node", "sync", a.dir)
        a.reconcile()
        synced = a.sync()
        assert d.hub_view(a.code) == a.view()  # nothing lost (reconciliation repaired it) ...
        rejected = ok("hub", "status", d.hub_dir)["rejected_batches"]
        assert (synced["pending"], synced["refused"], rejected) == (0, [], 0)  # ... but it never settles


@pytest.mark.parametrize("hub_backend", ["postgres"])  # the SQLite side is the test above
def test_hub_backup_and_restore_refuse_on_postgresql_naming_its_tools(district: District) -> None:
    """No file copy of a PostgreSQL store: the commands refuse, say which PostgreSQL tool does it,
    and leave no file behind."""
    d = district
    (d.root / "old.db").write_bytes(b"")
    for args, tool in (
        (("hub", "backup", d.hub_dir, "--out", d.root / "copy.db"), "pg_dump"),
        (("hub", "restore", d.hub_dir, "--from", d.root / "old.db"), "pg_restore"),
    ):
        res = run_sanji(*args)
        assert (res.code, res.data["error"]) == (2, "store_is_postgresql"), res
        assert tool in res.data["reason"]
    assert not (d.root / "copy.db").exists()
    assert ok("hub", "status", d.hub_dir)["rejected_batches"] == 0, "the store still answers"
