"""A damaged database file must be loud: `PRAGMA integrity_check` reports it, the nightly run records
the outcome `integrity_failed`, and no good backup is lost to it.

Damage is done to copies of real hub and station folders, by overwriting bytes in the middle of the
file on a page found with SQLite's dbstat table, in one of two ways that behave the same on every run:
- ``damage_index``: the last byte of a leaf page of the ``applications_number`` index (the rowid of
  one index entry), which `PRAGMA integrity_check` describes ("row N missing from index ...") and which
  nothing in the nightly run reads;
- ``damage_header``: the b-tree header of a leaf page of ``changes``, which makes SQLite refuse to run
  the check at all ("database disk image is malformed").
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hub import backup_rotation
from hub import nightly as hub_nightly
from hub.server import serve as hub_serve
from hub.service import Hub
from node import nightly as node_nightly
from node.station import Station
from replica.db import connect, integrity_check
from replica.errors import Refused
from tests.applicants import People
from tests.conftest import sqlite_only

from .conftest import CHINA, District, back_entry_line, free_port, make_district, run_sanji

# SQLite only, and said so in every test's id: the damage is done to hub.db's and node.db's pages and
# found by PRAGMA integrity_check. PostgreSQL checks its own pages (checksums, pg_amcheck); on it the
# nightly run's check is that the database answers (tests/pg/test_pg_store.py), and damage behind the
# log's back is repaired by the re-fold and anti-entropy on both backends (test_disasters.py, (a)).
pytestmark = [pytest.mark.usefixtures("hub_backend"), sqlite_only]


class Clock:
    def __init__(self) -> None:
        self.ms = int(datetime.now(CHINA).timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms


def _middle_leaf(db: Path, name: str) -> tuple[int, int]:
    """(page number, page size) of the leaf page of b-tree ``name`` nearest the middle of the file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        total = int(conn.execute("PRAGMA page_count").fetchone()[0])
        pages = [
            int(p)
            for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name=? AND pagetype='leaf' AND ncell > 0 AND pageno > 1", (name,)
            )
        ]
    finally:
        conn.close()
    assert pages, f"{name} has no leaf page in {db}"
    return min(pages, key=lambda p: abs(p - total // 2)), size


def damage_index(db: Path) -> int:
    """Flip bits of the last byte of an ``applications_number`` leaf page: the low byte of the rowid
    of the cell stored last. Returns the page number."""
    page, size = _middle_leaf(db, "applications_number")
    with db.open("r+b") as fh:
        fh.seek(page * size - 1)
        byte = fh.read(1)[0]
        fh.seek(page * size - 1)
        fh.write(bytes([byte ^ 0x55]))
    return page


def damage_header(db: Path) -> int:
    """Overwrite the b-tree header of a leaf page of ``changes``. Returns the page number."""
    page, size = _middle_leaf(db, "changes")
    with db.open("r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(b"\xff" * 8)
    return page


@pytest.fixture(scope="module")
def busy_district(tmp_path_factory: pytest.TempPathFactory) -> District:
    """A district with a few hundred applications synced, the hub stopped, every connection closed.
    Made once for this module: every test damages copies of its folders, never the folders."""
    root = tmp_path_factory.mktemp("busy")
    d = make_district(root)
    people = People(seed=1164)
    now = datetime.now(CHINA)
    lines = [back_entry_line(people, "360802-0001", now - timedelta(days=2, seconds=i)) for i in range(300)]
    with d.hub.serving():
        d.a.accept_lines(lines[:200], root)
        d.b.accept_lines(lines[200:], root)
        d.a.sync()
        d.b.sync()
    return d


def hub_copy(d: District, tmp_path: Path) -> Path:
    folder = tmp_path / "hub-copy"
    shutil.copytree(d.hub_dir, folder, ignore=shutil.ignore_patterns("backups", "*.log", "hub.pid"))
    return folder


def node_copy(d: District, tmp_path: Path) -> Path:
    folder = tmp_path / "node-a-copy"
    shutil.copytree(d.a.dir, folder)
    return folder


def logged_failure(caplog: pytest.LogCaptureFixture) -> bool:
    return any(r.levelno >= logging.ERROR and "integrity check FAILED" in r.getMessage() for r in caplog.records)


def test_integrity_check_reports_damage_in_the_middle_of_the_file(busy_district: District, tmp_path: Path) -> None:
    d = busy_district
    for folder, name in ((hub_copy(d, tmp_path), "hub.db"), (node_copy(d, tmp_path), "node.db")):
        db = folder / name
        clean = connect(db)
        assert integrity_check(clean) == "ok"
        clean.conn.close()
        damage_index(db)
        damaged = connect(db)
        try:
            report = integrity_check(damaged)
        finally:
            damaged.conn.close()
        assert report != "ok"
        assert "applications_number" in report, report


def test_the_nightly_run_records_integrity_failed(
    busy_district: District, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = busy_district
    folder = hub_copy(d, tmp_path)
    damage_index(folder / "hub.db")
    res = run_sanji("hub", "reconcile", folder, "--no-backup")
    assert res.code == 1, "a failed integrity check is loud: exit 1"
    assert "完整性检查未通过" in res.stderr and "sanji hub restore" in res.stderr
    assert "applications_number" in res.data["report"]["integrity"]
    assert logged_failure(caplog), "the failure is logged as an error"
    conn = sqlite3.connect(folder / "hub.db")
    try:
        outcome = conn.execute("SELECT outcome FROM nightly_runs ORDER BY id DESC").fetchone()[0]
        stored = conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
    finally:
        conn.close()
    assert (outcome, stored) == ("integrity_failed", 1)


def test_the_station_nightly_run_records_integrity_failed(
    busy_district: District, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = busy_district
    folder = node_copy(d, tmp_path)
    damage_index(folder / "node.db")
    st = Station(folder)
    try:
        result = node_nightly.run(st)  # the hub is stopped: reconciliation cannot run either
        row = st.conn.execute("SELECT outcome FROM nightly_runs ORDER BY id DESC").fetchone()
    finally:
        st.close()
    assert result["outcome"] == "integrity_failed"
    assert "applications_number" in result["integrity"]
    assert "reconcile" not in result, "a damaged database is neither reconciled nor compacted"
    assert row[0] == "integrity_failed"
    assert logged_failure(caplog)


def test_a_damaged_page_header_fails_loudly(busy_district: District, tmp_path: Path) -> None:
    d = busy_district
    folder = hub_copy(d, tmp_path)
    damage_header(folder / "hub.db")
    res = run_sanji("hub", "reconcile", folder, "--no-backup")
    assert res.code != 0
    assert "malformed" in res.stderr or "malformed" in str(res.data)


# Regression (a strict xfail until the bug was fixed).
def test_a_damaged_page_header_is_reported_by_the_check(busy_district: District, tmp_path: Path) -> None:
    d = busy_district
    folder = hub_copy(d, tmp_path)
    damage_header(folder / "hub.db")
    db = connect(folder / "hub.db")
    try:
        assert integrity_check(db) != "ok"
    finally:
        db.conn.close()
    # A refusal with the next step (exit 2), not an internal error.
    with pytest.raises(Refused, match="请用 sanji hub restore 从备份恢复") as refused:
        hub_serve(folder, host="127.0.0.1", port=free_port(), nightly="02:00")
    assert refused.value.code == "integrity_failed"


# Regression (a strict xfail until the bug was fixed).
def test_a_damaged_page_header_is_recorded_as_integrity_failed(busy_district: District, tmp_path: Path) -> None:
    d = busy_district
    folder = hub_copy(d, tmp_path)
    damage_header(folder / "hub.db")
    hub = Hub.open(folder)
    try:
        result = hub_nightly.run(hub, do_backup=False)
    finally:
        hub.close()
    assert result["outcome"] == "integrity_failed"


# Regression (a strict xfail until the bug was fixed).
def test_a_damaged_database_does_not_rotate_away_good_backups(busy_district: District, tmp_path: Path) -> None:
    d = busy_district
    folder = hub_copy(d, tmp_path)
    clock = Clock()
    hub = Hub.open(folder, clock=clock)
    try:
        good = hub_nightly.run(hub)["report"]["backup"]
    finally:
        hub.close()
    damage_index(folder / "hub.db")
    hub = Hub.open(folder, clock=clock)
    try:
        for _ in range(hub_nightly.KEEP_BACKUPS):
            clock.ms += 86_400_000
            assert hub_nightly.run(hub)["outcome"] == "integrity_failed"
    finally:
        hub.close()
    kept = backup_rotation.backups(folder / "backups")
    assert Path(good) in kept, "the last backup taken before the damage is kept"
