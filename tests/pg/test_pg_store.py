"""The hub store on PostgreSQL beyond the shared contract (``tests/hub/test_store_*.py`` runs that on
both backends): what only PostgreSQL can get wrong, or does differently.

- the dialect layer's translation of the hub's SQLite-worded SQL;
- migrations applied once when several processes open the same database at once;
- one writer at a time: a second write transaction waits for the advisory lock, so a change logged
  later is never committed, nor seen in a feed, before an earlier one;
- the nightly job on PostgreSQL (its checks and backup are the cluster's own), and the SQLite file
  operations refusing with the PostgreSQL tool to use instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hub import nightly
from hub.backup import backup
from hub.restore import restore
from hub.schema_pg import MIGRATIONS
from hub.store import HubStore, PgHubStore, StoreError
from hub.store.pg_dialect import PgConnection, translate
from hub.store.pg_store import WRITE_LOCK
from replica.errors import Refused
from replica.records import RecordStore
from sync.change import Change
from tests.ui.inproc import Pair

WAIT_S = 30.0  # a bound on waiting for another connection to reach a state, never a timing assertion


def _wait_for(predicate: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


# -- the dialect -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqlite", "postgresql", "returning"),
    [
        ("SELECT a FROM t WHERE b=? AND c=?", "SELECT a FROM t WHERE b=%s AND c=%s", None),
        ("SELECT '?%' FROM t WHERE b LIKE ?", "SELECT '?%%' FROM t WHERE b LIKE %s", None),
        ("UPDATE s SET f=MAX(f, COALESCE(?, f))", "UPDATE s SET f=GREATEST(f, COALESCE(%s, f))", None),
        ("SELECT MAX(id), MIN(x) FROM t", "SELECT MAX(id), MIN(x) FROM t", None),
        ("SELECT MIN(a, (SELECT MAX(b) FROM u))", "SELECT LEAST(a, (SELECT MAX(b) FROM u))", None),
        (
            "INSERT OR IGNORE INTO feed (station, change) VALUES (?, ?)",
            "INSERT INTO feed (station, change) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            None,
        ),
        (
            "INSERT OR IGNORE INTO changes (origin) VALUES (?)",
            "INSERT INTO changes (origin) VALUES (%s) ON CONFLICT DO NOTHING RETURNING rowid",
            "rowid",
        ),
        ("INSERT INTO alerts (kind) VALUES (?)", "INSERT INTO alerts (kind) VALUES (%s) RETURNING id", "id"),
        ("SELECT d.user, user FROM d WHERE x='user'", 'SELECT d."user", "user" FROM d WHERE x=\'user\'', None),
        ("DELETE FROM t WHERE a IN ( ) OR b NOT IN ()", "DELETE FROM t WHERE a = ANY('{}') OR b <> ALL('{}')", None),
        ("SELECT 1 WHERE (+a, +b) < (?, ?) AND c+1 > 2", "SELECT 1 WHERE (a, b) < (%s, %s) AND c+1 > 2", None),
    ],
)
def test_the_dialect_translates_outside_string_literals_only(sqlite: str, postgresql: str, returning: str) -> None:
    assert translate(sqlite) == (postgresql, returning)


def test_an_empty_in_list_means_what_it_means_on_sqlite(pg_dsn: str) -> None:
    """A store method handed no ids builds ``IN ()`` (the nightly facts of a run that rebuilt nothing):
    SQLite reads it as no match, and so must PostgreSQL, ``NOT IN ()`` matching every row."""
    sql = "SELECT COUNT(*) FILTER (WHERE x IN ()), COUNT(*) FILTER (WHERE x NOT IN ()) FROM (VALUES (1), (2)) v(x)"
    conn = PgConnection.connect(pg_dsn)
    try:
        assert conn.execute(sql).fetchone() == (0, 2)
    finally:
        conn.close()


# -- migrations and the one writer ------------------------------------------------------------------------


def test_processes_opening_one_database_at_once_apply_each_migration_once(pg_dsn: str) -> None:
    opened: list[PgHubStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PgHubStore.open_at(pg_dsn))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(opened) == 4
    with psycopg.connect(pg_dsn) as conn:
        counts = conn.execute("SELECT name, COUNT(*) FROM schema_migrations GROUP BY name ORDER BY name").fetchall()
        assert counts == [(name, 1) for name, _ in MIGRATIONS]
    for store in opened:
        store.close()


@pytest.fixture
def three(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[HubStore, HubStore, HubStore]]:
    """Three connections to one hub, as three hub processes would hold (a connection serves one
    caller at a time: a reader beside a waiting writer needs its own)."""
    a = HubStore.create(tmp_path / "hub", database=pg_dsn)
    b, c = HubStore.open(tmp_path / "hub"), HubStore.open(tmp_path / "hub")
    yield a, b, c
    for store in (a, b, c):
        store.close()


def _change(origin: str, seq: int) -> Change:
    return Change(origin, 1, seq, 1000 + seq, "application", f"app-{origin}-{seq}", {"status": "accepted"}, {})


def _log(store: HubStore, change: Change) -> int:
    (rowid, _, _) = RecordStore(store.db, lambda origin: 1).apply([change]).logged[0]
    store.add_to_feed("T1", rowid)
    return rowid


def _waiting_for_the_write_lock(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND ((classid::bigint << 32) | objid::bigint) = %s",
            (WRITE_LOCK,),
        ).fetchone()
    return bool(row and row[0])


def test_a_second_writer_waits_so_feed_positions_follow_commit_order(
    three: tuple[HubStore, HubStore, HubStore], pg_dsn: str
) -> None:
    """The late commit a sequence would lose (``tests/pg/test_feed_visibility.py``) cannot happen
    under the one write lock: B cannot even take its position until A has committed."""
    a, b, reader = three
    b_logged: list[int] = []
    with a.transaction():
        first = _log(a, _change("T1-V1", 1))

        def write_b() -> None:
            with b.transaction():
                b_logged.append(_log(b, _change("T1-V2", 1)))

        writer = threading.Thread(target=write_b)
        writer.start()
        _wait_for(lambda: _waiting_for_the_write_lock(pg_dsn), "B waiting for the write lock")
        assert b_logged == [] and reader.feed_page("T1", 0, 10) == []  # nothing of A's is visible yet
    writer.join(WAIT_S)
    assert not writer.is_alive()
    (second,) = b_logged
    assert first < second, "a position taken later is higher, and committed later"
    assert [rowid for rowid, _ in reader.feed_page("T1", 0, 10)] == [first, second]


def test_reads_are_not_held_up_by_a_writer(three: tuple[HubStore, HubStore, HubStore]) -> None:
    a, b, _ = three
    with a.transaction():
        a.set_meta("x", 1)
        assert b.get_meta("x") is None  # answered at once, from before A's commit
        b.ping()
    assert b.get_meta("x") == 1


# -- the nightly job and the SQLite file operations ------------------------------------------------------


@pytest.fixture
def pair(tmp_path: Path, pg_dsn: str) -> Iterator[Pair]:
    p = Pair(tmp_path, database=pg_dsn)
    yield p
    p.close()


def test_the_nightly_job_runs_on_postgresql_without_sqlite_files(pair: Pair) -> None:
    pair.accept()
    pair.push()
    out = nightly.run(pair.hub, "on-demand")
    report = out["report"]
    assert out["outcome"] == "ok" and report["integrity"] == "ok"
    assert report["backup"] is None, "the cluster is backed up by PostgreSQL's own tools"
    assert report["refold"]["pass_completed"] and report["refold"]["rebuilt"] == 0
    (village,) = [s for s in report["statistics"]["per_station"] if s["station"] == pair.st.code]
    assert village["accepted"] == 1
    assert [r[4] for r in pair.hub.store.recent_runs(5)] == ["ok"]
    assert not list(pair.hub.folder.glob("*.db")), "no SQLite file appears beside a PostgreSQL store"


def test_backup_and_restore_name_the_postgresql_tools_instead(pair: Pair, tmp_path: Path) -> None:
    with pytest.raises(Refused, match="pg_dump") as made:
        backup(pair.hub, tmp_path / "copy.db")
    assert made.value.code == "store_is_postgresql"
    (tmp_path / "old.db").write_bytes(b"")
    with pytest.raises(Refused, match="pg_restore"):
        restore(pair.hub.folder, tmp_path / "old.db")
    assert not (tmp_path / "copy.db").exists()


# -- a lost connection ----------------------------------------------------------------------------------


def _cut(store: HubStore, pg_dsn: str) -> None:
    """End the store's server process from outside, as a server restart or a failover would."""
    pid = store.conn.raw.info.backend_pid  # type: ignore[attr-defined]
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_lost_between_transactions_is_opened_again(
    three: tuple[HubStore, HubStore, HubStore], pg_dsn: str
) -> None:
    store = three[0]
    with store.transaction():
        store.set_meta("x", 1)
    _cut(store, pg_dsn)
    assert store.get_meta("x") == 1  # a lone read finds the connection lost, opens it again, reads
    _cut(store, pg_dsn)
    with store.transaction():  # BEGIN on a lost connection: opened again, under the write lock
        store.set_meta("x", 2)
    assert three[1].get_meta("x") == 2


def test_a_connection_lost_inside_a_transaction_loses_that_transaction_only(
    three: tuple[HubStore, HubStore, HubStore], pg_dsn: str
) -> None:
    store, other, _ = three
    with pytest.raises(StoreError), store.transaction():
        store.set_meta("x", 1)
        _cut(store, pg_dsn)
        store.set_meta("y", 1)  # the transaction is gone with its connection: nothing of it commits
    assert (other.get_meta("x"), other.get_meta("y")) == (None, None)
    group = store.group_transaction()
    group.begin()
    _cut(store, pg_dsn)
    with pytest.raises(StoreError), group.savepoint():  # a piece on the lost connection fails ...
        store.set_meta("z", 1)
    with pytest.raises(StoreError):
        group.commit()  # ... and so does the group's COMMIT: nothing runs on a new connection
    group.rollback()
    assert other.get_meta("z") is None
    with store.transaction():  # the next transaction opens the connection again
        store.set_meta("x", 3)
    assert other.get_meta("x") == 3
