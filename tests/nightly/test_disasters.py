"""Disasters that one reconciliation must repair with nothing lost.

Each scenario damages a district the way real ones get damaged (rows lost or altered at the hub, the
hub or a station put back from an older backup, a station's database file copied back by hand), then
runs the nightly reconciliation once (`node reconcile` from the stations, `hub reconcile` at the hub)
and checks, application by application (id, number and status), that hub and stations agree again.

Every scenario runs on both backends (``hub_backend``), but the two that go through `hub backup` and
`hub restore`, which copy ``hub.db`` and refuse on PostgreSQL by design. Their PostgreSQL counterparts
are below them: the database put back from an older ``pg_dump`` (with `hub backup`/`restore` refusing
and naming the tools), and a lost hub folder put back from its copy while the database survived.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from protocol.codec import pack, unpack
from tests.applicants import People
from tests.conftest import postgres_only, sqlite_only
from tests.e2e.conftest import HubServer
from tests.e2e.processes import healthz
from tests.pg_cluster import Cluster

from .conftest import District, Node, make_district, ok, run_sanji

IMMEDIATE = "360802-0001"  # 即办件: the station may complete it at once
PROMISED = "360802-0004"  # 承诺件 decided at the district; 家庭收入情况声明 may be deferred
PROMISED_SHORT = "360802-0010"  # 承诺件, 5 working days, decided at the township

pytestmark = pytest.mark.usefixtures("hub_backend")  # on SQLite and on PostgreSQL, but where marked


def assert_hub_agrees(d: District, node: Node) -> None:
    """The hub holds exactly the station's applications, each once, with the same number and status."""
    assert d.hub_view(node.code) == node.view()


def raw_copy_back(node: Node, copy: Path) -> None:
    """Put a copy of node.db back by hand, as someone would with a file manager (no `node restore`)."""
    for suffix in ("-wal", "-shm"):
        Path(str(node.dir / "node.db") + suffix).unlink(missing_ok=True)
    shutil.copy2(copy, node.dir / "node.db")


# -- (a) rows deleted or altered at the hub -----------------------------------------------------------


def test_rows_deleted_or_altered_at_the_hub_are_restored(district: District, people: People) -> None:
    d, a, b = district, district.a, district.b
    with d.hub.serving():
        for _ in range(3):
            a.accept(people, IMMEDIATE)
            a.accept(people, PROMISED, defer=("家庭收入情况声明",))
            b.accept(people, IMMEDIATE)
        a.sync()
        b.sync()
        nums = sorted(a.numbers())
        ok("node", "transition", a.dir, nums[0], "--to", "completed")  # two changes: accept, complete
        ok("node", "transition", a.dir, nums[2], "--to", "withdrawn")
        ok("hub", "transition", d.hub_dir, nums[1], "--to", "under_review")  # a hub-origin change
        a.sync()
        b.sync()
        assert_hub_agrees(d, a)
        assert_hub_agrees(d, b)

        hub = d.hub_db()
        ids = {n: hub.execute("SELECT id FROM applications WHERE number=?", (n,)).fetchone()[0] for n in nums}
        # 1. One change row of a completed application lost, with its record and projection.
        first = hub.execute("SELECT MIN(rowid) FROM changes WHERE application=?", (ids[nums[0]],)).fetchone()[0]
        hub.execute("DELETE FROM changes WHERE rowid=?", (first,))
        hub.execute("DELETE FROM records WHERE application=?", (ids[nums[0]],))
        hub.execute("DELETE FROM applications WHERE id=?", (ids[nums[0]],))
        # 2. An application gone entirely: every change, record and the projection.
        hub.execute("DELETE FROM changes WHERE application=?", (ids[nums[3]],))
        hub.execute("DELETE FROM records WHERE application=?", (ids[nums[3]],))
        hub.execute("DELETE FROM applications WHERE id=?", (ids[nums[3]],))
        # 3. A merged record altered behind the log's back: the withdrawn one now reads "approved".
        (blob,) = hub.execute(
            "SELECT state FROM records WHERE entity='application' AND id=?", (ids[nums[2]],)
        ).fetchone()
        state = unpack(blob)
        assert isinstance(state, dict) and state["status"][2] == "withdrawn"
        state["status"][2] = "approved"
        hub.execute("UPDATE records SET state=? WHERE entity='application' AND id=?", (pack(state), ids[nums[2]]))
        hub.commit()
        hub.close()
        assert d.hub_view(a.code) != a.view()

        got = a.reconcile()
        assert got["divergent"] >= 2 and got["repaired"] >= 2
        b.reconcile()
        report = ok("hub", "reconcile", d.hub_dir, "--no-backup")
        assert report["stations_checked"] == 2
        assert report["divergent"] >= 1 and report["repaired"] >= 3
        assert report["report"]["integrity"] == "ok"

        assert_hub_agrees(d, a)
        assert_hub_agrees(d, b)
        assert a.view()[ids[nums[0]]][1] == "completed"
        assert a.view()[ids[nums[1]]][1] == "under_review"
        assert a.view()[ids[nums[2]]][1] == "withdrawn"
        again = a.reconcile()
        assert (again["divergent"], again["summary_match"]) == (0, True)
        assert d.alerts("fork") == []


# -- (b) the hub restored from an older backup -----------------------------------------------------------


@sqlite_only  # `hub backup`/`restore` copy hub.db; PostgreSQL's counterpart is the pg_dump test below
@pytest.mark.slow
def test_hub_restored_from_an_older_backup_gets_everything_back(tmp_path: Path, people: People) -> None:
    """A real `sanji hub serve` process: backed up while serving, stopped, restored, started again."""
    d = make_district(tmp_path)
    a, b = d.a, d.b
    server = HubServer(d.hub_dir, d.hub.port, tmp_path / "hub-serve-1.log")
    server.start()
    try:
        for node in (a, b):
            node.accept(people, IMMEDIATE)
            node.accept(people, PROMISED, defer=("家庭收入情况声明",))
            node.sync()
        backup = ok("hub", "backup", d.hub_dir, "--out", tmp_path / "hub-backup.db")
        assert backup["bytes"] > 0 and Path(backup["file"]).is_file()
        # After the backup: more work, synced, and a station-side completion.
        for node in (a, b):
            node.accept(people, IMMEDIATE)
            node.accept(people, PROMISED_SHORT)
            node.sync()
        ok("node", "transition", a.dir, sorted(a.numbers())[0], "--to", "completed")
        a.sync()
        refused = run_sanji("hub", "restore", d.hub_dir, "--from", tmp_path / "hub-backup.db")
        assert refused.code == 2 and "serving" in refused.stderr, "restoring under a serving hub must be refused"
    finally:
        server.stop()
    assert healthz(server.url) is None

    assert ok("hub", "restore", d.hub_dir, "--from", tmp_path / "hub-backup.db")["restored"] is True
    assert len(d.hub_numbers(a.code)) == 2 and len(d.hub_numbers(b.code)) == 2

    server = HubServer(d.hub_dir, d.hub.port, tmp_path / "hub-serve-2.log")
    server.start()
    try:
        # Station A reconciles straight away; station B first accepts one more and syncs (the hub
        # answers with a gap and B sends what the hub lacks), then reconciles.
        got = a.reconcile()
        assert got["repaired"] >= 3 and got["summary_match"] is True
        b.accept(people, IMMEDIATE)
        synced = b.sync()
        assert synced["pending"] == 0 and synced["refused"] == []
        b.reconcile()
        for node, count in ((a, 4), (b, 5)):
            assert len(node.view()) == count
            assert_hub_agrees(d, node)
            assert d.hub_numbers(node.code) == node.numbers()  # each exactly once
        # Work after the restore flows as usual.
        a.accept(people, IMMEDIATE)
        assert a.sync()["pending"] == 0
        assert_hub_agrees(d, a)
        assert a.reconcile()["divergent"] == 0
        assert d.alerts("fork") == []
        report = ok("hub", "reconcile", d.hub_dir, "--no-backup")
        assert report["stations_checked"] == 2
        assert report["report"]["integrity"] == "ok"
    finally:
        server.stop()


@sqlite_only  # `hub backup`/`restore` copy hub.db; PostgreSQL's counterpart is the pg_dump test below
def test_hub_decisions_after_the_backup_survive_a_hub_restore(district: District, people: People) -> None:
    """A decision the hub made after its backup comes back from the station's copy into quarantine (only
    its origin can vouch for a change one by one), an operator releases it, and the restored hub's new
    decisions, in a new hub epoch, reach the station instead of colliding with keys it already holds."""
    from hub.quarantine_review import release
    from hub.service import Hub

    d, a = district, district.a
    with d.hub.serving():
        for _ in range(3):
            a.accept(people, PROMISED)
        a.sync()
        ok("hub", "backup", d.hub_dir, "--out", d.root / "hub-backup.db")
        nums = sorted(a.numbers())
        ok("hub", "transition", d.hub_dir, nums[0], "--to", "under_review")  # after the backup
        a.sync()
        assert a.view() == d.hub_view(a.code)
    ok("hub", "restore", d.hub_dir, "--from", d.root / "hub-backup.db")
    with d.hub.serving():
        a.reconcile()
        hub = Hub.open(d.hub_dir)
        try:
            held = hub.store.quarantined()
            assert len(held) == 1 and "only its origin can vouch" in str(held[0]["reason"])
            release(hub, int(str(held[0]["id"])), by="值班员", note="区局本地备份之后的审查决定")
        finally:
            hub.close()
        ok("hub", "transition", d.hub_dir, nums[1], "--to", "under_review")  # a new decision after it
        a.sync()
        a.reconcile()
        statuses = {number: status for number, status in a.view().values()}
        assert statuses[nums[0]] == "under_review" and statuses[nums[1]] == "under_review"
        assert_hub_agrees(d, a)


# -- (b') on PostgreSQL: the database from an older pg_dump, or the hub folder from its copy ---------------


def _dump_name(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1]


@postgres_only  # the counterpart of the two tests above
@pytest.mark.slow
def test_hub_database_put_back_from_an_older_pg_dump_gets_everything_back(
    tmp_path: Path, people: People, pg_cluster: Cluster, pg_dsn: str
) -> None:
    """PostgreSQL's counterpart of the two `hub restore` tests above. `hub backup` and `hub restore`
    refuse (``store_is_postgresql``), naming pg_dump and pg_restore; the DBA's dump is taken while the
    hub serves; after it, more work is synced, a station completes one application and the hub decides
    another; the database is put back from the dump as README says (dropped, made again, pg_restore),
    the hub folder untouched. One sync and one reconciliation from each station bring back everything,
    each once; the decision made after the dump comes back into quarantine for an operator; and the hub's
    decisions after the restore reach the station instead of colliding with what it already holds."""
    from hub.quarantine_review import release
    from hub.service import Hub

    d = make_district(tmp_path, database=pg_dsn)
    a, b = d.a, d.b
    with d.hub.serving():
        a.accept(people, IMMEDIATE)
        a.accept(people, PROMISED, defer=("家庭收入情况声明",))
        promised_b = [str(b.accept(people, PROMISED)["number"]) for _ in range(2)]
        a.sync()
        b.sync()
        refused = run_sanji("hub", "backup", d.hub_dir, "--out", tmp_path / "hub-backup.db")
        assert refused.code == 2 and refused.data["error"] == "store_is_postgresql", refused
        assert "pg_dump" in refused.data["reason"] and not (tmp_path / "hub-backup.db").exists()
        dump = pg_cluster.dump(_dump_name(pg_dsn), "before")
        # After the dump: more work synced, a station-side completion, and a decision of the hub's.
        for node in (a, b):
            node.accept(people, IMMEDIATE)
            node.accept(people, PROMISED_SHORT)
            node.sync()
        ok("node", "transition", a.dir, sorted(a.numbers())[0], "--to", "completed")
        a.sync()
        ok("hub", "transition", d.hub_dir, promised_b[0], "--to", "under_review")
        b.sync()
        decided_after_dump = dict(b.view().values())
        assert decided_after_dump[promised_b[0]] == "under_review"
    refused = run_sanji("hub", "restore", d.hub_dir, "--from", dump)
    assert refused.code == 2 and refused.data["error"] == "store_is_postgresql", refused
    assert "pg_restore" in refused.data["reason"]

    pg_cluster.restore(_dump_name(pg_dsn), dump)
    assert len(d.hub_numbers(a.code)) == 2 and len(d.hub_numbers(b.code)) == 2, "the dump's day"

    with d.hub.serving():
        # The first thing after the restore: the hub decides for B, which syncs. The decision must reach
        # it by its feed, not be passed over (B's cursor is beyond the restored positions) nor shadowed
        # by the decision of the same (epoch, seq) B already holds from before the restore.
        ok("hub", "transition", d.hub_dir, promised_b[1], "--to", "under_review")
        b.accept(people, IMMEDIATE)
        synced = b.sync()
        assert synced["pending"] == 0 and synced["refused"] == []
        statuses = dict(b.view().values())
        assert statuses[promised_b[1]] == "under_review", "the restored hub's decision reached the station"
        got = a.reconcile()
        assert got["repaired"] >= 3 and got["summary_match"] is True
        b.reconcile()
        # The hub's own decision after the dump: only its origin can vouch for it one by one.
        hub = Hub.open(d.hub_dir)
        try:
            held = hub.store.quarantined()
            assert len(held) == 1 and "only its origin can vouch" in str(held[0]["reason"]), held
            release(hub, int(str(held[0]["id"])), by="值班员", note="数据库恢复之后补回的审查决定")
        finally:
            hub.close()
        b.sync()
        b.reconcile()
        statuses = dict(b.view().values())
        assert statuses[promised_b[0]] == statuses[promised_b[1]] == "under_review", statuses
        for node, count in ((a, 4), (b, 5)):
            assert len(node.view()) == count
            assert_hub_agrees(d, node)
            assert d.hub_numbers(node.code) == node.numbers()  # each exactly once
        a.accept(people, IMMEDIATE)
        assert a.sync()["pending"] == 0
        assert_hub_agrees(d, a)
        assert a.reconcile()["divergent"] == 0
        assert d.alerts("fork") == []
        report = ok("hub", "reconcile", d.hub_dir, "--no-backup")
        assert report["stations_checked"] == 2 and report["report"]["integrity"] == "ok"


@postgres_only  # on SQLite the folder is the database: `hub backup` keeps both, tested above
def test_a_lost_hub_folder_put_back_from_its_copy_loses_nothing(tmp_path: Path, people: People, pg_dsn: str) -> None:
    """The other half of a PostgreSQL hub's backup: the folder (keys, key list, photos) is lost while
    the database survives, and is put back from the copy README's backup makes beside the dump. The
    hub signs with the same keys, the stations carry on with no re-enrolment, and nothing needs
    repairing: what the database held after the copy was made is all still there, and the photos
    uploaded before the copy are back with it."""
    from .test_backup_blobs import inspected

    d = make_district(tmp_path, database=pg_dsn)
    a, b = d.a, d.b
    with d.hub.serving():
        for node in (a, b):
            node.accept(people, PROMISED)
            node.sync()
        inspected_number, _ = inspected(d, people)  # a report with photos, in the folder's blobs/
    copy = tmp_path / "hub-folder-copy"
    shutil.copytree(d.hub_dir, copy)  # README: `tar` of the folder beside the nightly pg_dump
    with d.hub.serving():
        for node in (a, b):
            node.accept(people, IMMEDIATE)
            node.sync()
        ok("hub", "transition", d.hub_dir, sorted(a.numbers())[0], "--to", "under_review")
    shutil.rmtree(d.hub_dir)
    res = run_sanji("hub", "status", d.hub_dir)
    assert res.code == 2 and res.data["error"] == "not_a_hub", res  # loud, with what to do
    shutil.copytree(copy, d.hub_dir)

    with d.hub.serving():
        for node in (a, b):
            synced = node.sync()
            assert synced["pending"] == 0 and synced["refused"] == [], synced
        for node in (a, b):
            got = node.reconcile()
            assert (got["divergent"], got["summary_match"]) == (0, True), got
            assert_hub_agrees(d, node)
        assert (len(a.view()), len(b.view())) == (3, 2)
        assert dict(a.view().values())[sorted(a.numbers())[0]] == "under_review"
        assert ok("hub", "show", d.hub_dir, inspected_number)["inspections"][0]["missing_blobs"] == []
        assert ok("hub", "status", d.hub_dir)["missing_blobs"] == 0, "the photos came back with the folder"
        assert d.alerts("fork") == []
        report = ok("hub", "reconcile", d.hub_dir, "--no-backup")
        assert report["divergent"] == 0 and report["report"]["integrity"] == "ok"


# -- (c) a station restored from an older backup -----------------------------------------------------------


def test_station_restored_from_an_older_backup_starts_a_new_epoch(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, PROMISED, defer=("家庭收入情况声明",))
        a.accept(people, PROMISED)
        a.sync()
        a.accept(people, IMMEDIATE)  # accepted offline: in the backup, not yet at the hub
        assert ok("node", "backup", a.dir, "--out", d.root / "a-backup.db")["bytes"] > 0
        a.sync()
        for _ in range(3):
            a.accept(people, IMMEDIATE)
        nums = sorted(a.numbers())
        ok("node", "transition", a.dir, nums[3], "--to", "completed")
        ok("hub", "transition", d.hub_dir, nums[0], "--to", "under_review")
        a.sync()
        before = a.view()
        assert len(before) == 6 and before == d.hub_view(a.code)
        assert a.status()["epoch"] == 1

        restored = ok("node", "restore", a.dir, "--from", d.root / "a-backup.db")
        assert restored["restored"] is True and restored["epoch"] == 2
        assert a.status()["epoch"] == 2
        assert len(a.view()) == 3

        got = a.reconcile()
        assert got["repaired"] >= 3 and got["summary_match"] is True
        assert a.view() == before == d.hub_view(a.code)

        new = a.accept(people, IMMEDIATE)
        assert "-E2-" in new["number"]
        assert new["number"] not in {number for number, _ in before.values()}
        synced = a.sync()
        assert synced["pending"] == 0 and synced["refused"] == []
        assert_hub_agrees(d, a)
        assert len(d.hub_view(a.code)) == 7
        assert a.reconcile()["divergent"] == 0
        assert d.alerts("fork") == []


# Regression (a strict xfail until the bug was fixed).
def test_changes_only_in_the_restored_backup_count_as_pending_and_sync(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, IMMEDIATE)
        a.sync()
        a.accept(people, IMMEDIATE)  # offline; the disk dies before the next sync
        a.accept(people, PROMISED)
        ok("node", "backup", a.dir, "--out", d.root / "a-backup.db")
        ok("node", "restore", a.dir, "--from", d.root / "a-backup.db")
        assert a.status()["pending"] >= 2
        a.sync()
        assert_hub_agrees(d, a)


# Regression (a strict xfail until the bug was fixed).
@sqlite_only  # the station refuses its neighbour's file; the hub is not asked anything
def test_restoring_another_stations_backup_is_refused(district: District, people: People) -> None:
    d, a, b = district, district.a, district.b
    with d.hub.serving():
        a.accept(people, IMMEDIATE)
        b.accept(people, IMMEDIATE)
        a.sync()
        b.sync()
        ok("node", "backup", b.dir, "--out", d.root / "b-backup.db")
        res = run_sanji("node", "restore", a.dir, "--from", d.root / "b-backup.db")
        assert res.code == 2, res.data
        assert a.status()["station"] == a.code


# -- (d) a station's database copied back by hand ------------------------------------------------------------


def test_station_db_copied_back_by_hand_forks_once_and_loses_nothing(district: District, people: People) -> None:
    d, a, b = district, district.a, district.b
    with d.hub.serving():
        a.accept(people, PROMISED)
        a.accept(people, IMMEDIATE)
        a.sync()
        b.accept(people, IMMEDIATE)
        b.sync()
        copy = d.root / "node-a-copy.db"
        shutil.copy2(a.dir / "node.db", copy)  # no connection is open: the file is whole
        for _ in range(2):
            a.accept(people, IMMEDIATE)
        ok("node", "transition", a.dir, sorted(a.numbers())[1], "--to", "completed")
        a.sync()
        lost_locally = a.view()
        assert len(lost_locally) == 4

        raw_copy_back(a, copy)
        assert len(a.view()) == 2 and a.status()["epoch"] == 1
        new = [a.accept(people, IMMEDIATE), a.accept(people, PROMISED)]  # reuse seqs the hub holds

        first = run_sanji("node", "sync", a.dir)
        assert first.data is not None, first.stderr
        assert any("fork" in r for r in first.data["refused"]), first.data
        assert a.status()["epoch"] == 2  # re-issued under a new epoch, by itself
        assert len(d.alerts("fork")) == 1

        a.sync()
        got = a.reconcile()
        assert got["summary_match"] is True
        b.reconcile()
        ok("hub", "reconcile", d.hub_dir, "--no-backup")
        a.sync()

        view = a.view()
        assert set(lost_locally) <= set(view), "applications taken before the copy-back must come back"
        assert {n["id"] for n in new} <= set(view), "applications taken after the copy-back must be kept"
        assert len(view) == 6
        assert d.hub_numbers(a.code) == a.numbers()
        assert_hub_agrees(d, a)
        assert_hub_agrees(d, b)
        assert a.reconcile()["divergent"] == 0
        assert len(d.alerts("fork")) == 1, "one fork, one alert"


# Regression (a strict xfail until the bug was fixed).
def test_the_morning_report_flags_a_number_given_twice(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, IMMEDIATE)
        a.sync()
        copy = d.root / "node-a-copy.db"
        shutil.copy2(a.dir / "node.db", copy)
        a.accept(people, IMMEDIATE)
        a.sync()
        raw_copy_back(a, copy)
        a.accept(people, IMMEDIATE)
        run_sanji("node", "sync", a.dir)
        a.sync()
        a.reconcile()
        numbers = d.hub_numbers(a.code)
        twice = sorted({n for n in numbers if numbers.count(n) > 1})
        assert twice, "the scenario should produce a number given twice"
        report = ok("hub", "reconcile", d.hub_dir, "--no-backup")["report"]
        flagged = json.dumps({k: v for k, v in report.items() if k != "statistics"}, ensure_ascii=False)
        assert all(n in flagged for n in twice)
