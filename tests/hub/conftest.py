"""Fixtures for the :class:`hub.store.HubStore` contract tests (``test_store_*.py``): a fresh store in
a temporary folder, once for every backend in ``store_backends.BACKENDS``; the worlds of the hub suites
on both backends; the hub's app serving a hub in which a township and two villages are enrolled; and a
township and its village each with a staff member signed in, for the tests of values sealed at rest."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import HubConfig, create_app
from hub.store import HubStore, PgHubStore
from node import at_rest_arrivals
from node.station import Station
from tests.conftest import FakeClock, Spec, Templates, World
from tests.node.staff_helpers import STAFF_PASSWORD, sign_in, with_staff
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


# -- the app, serving a hub with stations enrolled ----------------------------------------------------

# Enrolled in-process when the session's template is built; a few tests enrol more over HTTP.
ENROLLED: tuple[Spec, ...] = (("T1", "township", ""), ("T1-V1", "village", "T1"), ("T1-V2", "village", "T1"))


@pytest.fixture
async def enrolled_client(
    tmp_path: Path, templates: Templates, hub_backend: str, make_world: Callable[..., World]
) -> AsyncIterator[tuple[TestClient, Path]]:
    """A client of the app serving a copy of a hub folder in which ``ENROLLED`` are already enrolled (on
    PostgreSQL, a hub built so in a database of its own: a database is not a folder to copy), and the
    folder that holds the hub's folder and the stations' beside it."""
    if hub_backend == "postgres":
        w = make_world(*ENROLLED)
        w.close()  # the app opens the folder itself, as `sanji hub serve` does
        tmp_path = w.root
    else:
        shutil.copytree(templates.get(ENROLLED), tmp_path, dirs_exist_ok=True)
    client = TestClient(TestServer(create_app(HubConfig(folder=tmp_path / "hub"))))
    await client.start_server()
    try:
        yield client, tmp_path
    finally:
        await client.close()


# -- values sealed at rest ---------------------------------------------------------------------------

SEALED_TOWNSHIP, SEALED_VILLAGE = "360802-T01", "360802-T01-05"


def _signed_in(st: Station) -> Station:
    with_staff(st.db, st.code)
    st.session = sign_in(st.db, "zhangsan", STAFF_PASSWORD, now_ms=st.clock(), code=st.code)
    at_rest_arrivals.on_sign_in(st)  # what a sign-in does: the at-rest key pair, for values that come unattended
    return st


@pytest.fixture
def signed_in_pair(world: World) -> tuple[Station, Station]:
    """Township 360802-T01 and its village 360802-T01-05, each with ``zhangsan`` signed in (so what
    they hold is sealed at rest), on the real clock."""
    world.clock.ms = int(time.time() * 1000)
    township = _signed_in(world.station(SEALED_TOWNSHIP, "township"))
    return township, _signed_in(world.station(SEALED_VILLAGE, "village", SEALED_TOWNSHIP))
