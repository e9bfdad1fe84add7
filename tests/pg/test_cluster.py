"""The throwaway cluster itself: it runs PostgreSQL 15 or later, each test's database is its own, and a
machine without the binaries gets a failure that says how to install them (issue 15)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.inner_pytest import run_inner_pytest
from tests.pg_cluster import Cluster, MissingBinaries, find_bindir


def test_the_cluster_answers_with_postgresql_15_or_later(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
    assert version is not None and int(version[0]) >= 150000


def test_the_unix_socket_in_the_clusters_folder_answers_too(pg_cluster: Cluster) -> None:
    with psycopg.connect(pg_cluster.socket_dsn()) as conn:
        row = conn.execute("SELECT current_setting('unix_socket_directories')").fetchone()
    assert row is not None and row[0] == str(pg_cluster.root)


def test_a_table_made_in_one_tests_database_is_absent_from_the_next(pg_dsn: str, pg_cluster: Cluster) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE left_behind (x int)")
        conn.execute("INSERT INTO left_behind VALUES (1)")
    other = pg_cluster.create_database("isolation_probe", template="sanji_template")
    try:
        with psycopg.connect(other) as conn:
            row = conn.execute("SELECT to_regclass('left_behind') IS NULL").fetchone()
        assert row == (True,)
    finally:
        pg_cluster.drop_database("isolation_probe")


def test_a_database_is_dropped_even_with_a_connection_left_open(pg_cluster: Cluster) -> None:
    dsn = pg_cluster.create_database("left_open")
    conn = psycopg.connect(dsn)
    try:
        pg_cluster.drop_database("left_open")
        assert pg_cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'left_open'") == "0"
    finally:
        conn.close()


def test_stop_removes_the_folder_and_the_server(tmp_path: Path) -> None:
    cluster = Cluster().start()
    root, pid = cluster.root, cluster.postmaster_pid()
    assert root is not None and Path(f"/proc/{pid}").exists()
    cluster.stop()
    assert not root.exists()
    assert not Path(f"/proc/{pid}").exists() or "postgres" not in Path(f"/proc/{pid}/cmdline").read_text()


def test_missing_binaries_fail_with_how_to_install_them(tmp_path: Path) -> None:
    with pytest.raises(MissingBinaries, match="apt-get install -y postgresql"):
        find_bindir([tmp_path / "nowhere"])


def test_a_machine_without_postgresql_fails_the_tests_that_need_it_never_skips(tmp_path: Path) -> None:
    """Through pytest itself: the fixture's failure is an error in the run, with the install command."""
    (tmp_path / "test_needs_pg.py").write_text(
        "import tests.pg_cluster as pc\n"
        "def _missing(*args, **kwargs):\n"
        "    raise pc.MissingBinaries(pc.INSTALL_HINT)\n"
        "pc.find_bindir = _missing\n"
        "def test_wants_a_database(pg_dsn):\n"
        "    pass\n",
        encoding="utf-8",
    )
    run = run_inner_pytest(tmp_path)
    assert run.returncode != 0, run.stdout
    assert "1 error" in run.stdout and "skipped" not in run.stdout, run.stdout
    assert "apt-get install -y postgresql" in run.stdout, run.stdout
