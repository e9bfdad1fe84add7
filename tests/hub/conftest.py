"""Fixtures for the :class:`hub.store.HubStore` contract tests (``test_store_*.py``): a fresh store in
a temporary folder, once for every backend in ``store_backends.BACKENDS``."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.store import HubStore, PgHubStore
from tests.conftest import FakeClock, Spec, Templates, World
from tests.pg_cluster import Cluster

from .store_backends import BACKENDS, Backend, bound


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    if chosen.name == "postgres":
        return bound(chosen, request.getfixturevalue("pg_dsn"))
    return chosen


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "hub"


@pytest.fixture
def store(backend: Backend, folder: Path) -> Iterator[HubStore]:
    s = backend.create(folder)
    yield s
    s.close()


# -- hub suites on both backends --------------------------------------------------------------------
#
# A module runs on both backends with ``pytestmark = pytest.mark.usefixtures("hub_backend")``: its
# ``make_world`` then builds each world's hub on SQLite (from the session's templates, as everywhere)
# or in a fresh PostgreSQL database of the throwaway cluster (built from scratch: a database is not a
# folder to copy), the stations beside it alike.


_worlds = itertools.count(1)


@pytest.fixture
def make_world(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock, templates: Templates
) -> Iterator[Callable[..., World]]:
    on_pg = "hub_backend" in request.fixturenames and request.getfixturevalue("hub_backend") == "postgres"
    cluster: Cluster | None = request.getfixturevalue("pg_cluster") if on_pg else None
    made: list[World] = []
    databases: list[str] = []

    def make(*specs: Spec) -> World:
        root = tmp_path / f"world{len(made)}"
        if cluster is None:
            w = World(root, clock, template=templates.get(specs), codes=[s[0] for s in specs])
        else:
            databases.append(f"w{os.getpid()}_{next(_worlds)}")
            w = World(root, clock, database=cluster.create_database(databases[-1]))
            assert isinstance(w.hub.store, PgHubStore)
            for code, tier, parent in specs:
                w.station(code, tier, parent)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
    for name in databases:
        assert cluster is not None
        cluster.drop_database(name)
