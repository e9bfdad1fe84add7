"""A PostgreSQL hub database put back from a dump (or copied) is told apart at open by its OID, and goes
on as `hub restore` leaves a SQLite hub: a new generation (stations re-read their feeds) and a new epoch
for the hub's own changes, once, whichever process opens it first (``hub/store/pg_restored.py``). The
end-to-end scenario, with pg_dump and pg_restore, is tests/nightly/test_disasters.py's."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hub.service import Hub
from hub.store import PgHubStore
from tests.conftest import FakeClock
from tests.pg_cluster import Cluster

DISTRICT = "360802"


def _marks(dsn: str) -> tuple[object, object, object]:
    store = PgHubStore.open_at(dsn)
    try:
        return store.get_meta("generation"), store.get_meta("epoch", 1), store.get_meta("seq")
    finally:
        store.close()


@pytest.fixture
def made(tmp_path: Path, pg_cluster: Cluster) -> Iterator[tuple[Cluster, str]]:
    """A hub in a database of its own, whose own changes have reached seq 5."""
    name = f"restored_{abs(hash(tmp_path)) % 10**8}"
    dsn = pg_cluster.create_database(name)
    clock = FakeClock()
    Hub.create(tmp_path / "hub", district=DISTRICT, name="测试区", catalogue=None, clock=clock, database=dsn).close()
    store = PgHubStore.open_at(dsn)
    with store.transaction():
        store.set_meta("seq", 5)
    store.close()
    try:
        yield pg_cluster, name
    finally:
        pg_cluster.drop_database(name)
        pg_cluster.drop_database(name + "_copy")


def test_reopening_the_same_database_changes_nothing(made: tuple[Cluster, str]) -> None:
    cluster, name = made
    first = _marks(cluster.dsn(name))
    assert first[0] and first[1] == 1
    assert _marks(cluster.dsn(name)) == first, "a restart is not a restore"


def test_a_database_put_back_takes_a_new_generation_and_epoch_once(made: tuple[Cluster, str]) -> None:
    cluster, name = made
    generation, epoch, seq = _marks(cluster.dsn(name))
    assert seq == 5
    cluster.psql(f'CREATE DATABASE "{name}_copy" TEMPLATE "{name}"')  # what pg_restore into a new one gives
    copy = cluster.dsn(name + "_copy")
    # Two processes open it at once (a restarted `hub serve --workers 2`): the step is taken once.
    with ThreadPoolExecutor(2) as pool:
        opened = list(pool.map(lambda _: _marks(copy), range(2)))
    after = _marks(copy)
    assert after[0] != generation and after[1] == epoch + 1 and after[2] == 0  # type: ignore[operator]
    assert opened[0] == opened[1] == after, "one new generation and one new epoch, not one per process"
    assert _marks(cluster.dsn(name)) == (generation, epoch, seq), "the original is left as it was"
