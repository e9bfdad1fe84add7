"""Fixtures for the :class:`hub.store.HubStore` contract tests (``test_store_*.py``): a fresh store in
a temporary folder, once for every backend in ``store_backends.BACKENDS``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.store import HubStore

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
