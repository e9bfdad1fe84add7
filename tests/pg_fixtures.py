"""Pytest fixtures over ``tests/pg_cluster.py``: one throwaway PostgreSQL cluster per test session, and a
fresh database per test (registered in ``tests/conftest.py``, so any test may ask for them).

``pg_cluster`` starts lazily, the first time a test asks for it, so a run without PostgreSQL tests pays
nothing. When the binaries are missing it fails (``MissingBinaries``, with how to install them): a
PostgreSQL test that cannot run is an error to fix, never a silent skip.

``pg_dsn`` is a database of its own for one test, made with ``CREATE DATABASE … TEMPLATE`` from
``sanji_template`` (empty today; a contract test may fill a template with the schema once and copy it
per test) and dropped afterwards, with any connection the test left open, even when the test failed.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.pg_cluster import Cluster, MissingBinaries

TEMPLATE = "sanji_template"
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A running PostgreSQL (15+) cluster for the whole session; stopped and removed at the end."""
    try:
        cluster = Cluster().start()
    except MissingBinaries as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        cluster.create_database(TEMPLATE)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_dsn(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database for this test only; its DSN (loopback TCP)."""
    name = f"t{os.getpid()}_{next(_numbers)}"
    dsn = pg_cluster.create_database(name, template=TEMPLATE)
    try:
        yield dsn
    finally:
        pg_cluster.drop_database(name)
