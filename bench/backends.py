"""Where a benchmark's hub keeps its store: ``--backend sqlite`` (hub.db in the hub folder, the default)
or ``--backend postgres`` (a throwaway PostgreSQL cluster of its own, ``tests/pg_cluster.py``, as
``bench/pg_driver.py`` starts it, removed afterwards), and ``--workers N`` for `hub serve`.

The cluster runs durable (fsync and synchronous_commit on), as a hub's database would, because the SQLite
hub it is compared with commits with synchronous=FULL. The database server's CPU is measured apart from
the hub's: with SQLite the store's work is done inside the hub processes, so it is in the hub's figure
and the database figure is zero; with PostgreSQL it is the postmaster's process tree
(``pg_driver.server_cpu_seconds``), and "per change" figures should be read as their sum.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BACKENDS = ("sqlite", "postgres")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="sqlite", help="the hub's store (default sqlite)")
    p.add_argument("--workers", type=int, default=1, help="hub serve --workers N (default 1)")


@dataclass
class Backend:
    kind: str
    dsn: str | None = None  # the hub's database, for `Hub.create(database=)`; None on SQLite
    cluster: Any = None

    def db_cpu_seconds(self) -> float:
        """CPU the database server has used so far (0 on SQLite: the hub processes do that work)."""
        if self.cluster is None:
            return 0.0
        from bench.pg_driver import server_cpu_seconds

        return server_cpu_seconds(self.cluster.postmaster_pid())

    @contextlib.contextmanager
    def quick_setup(self) -> Iterator[None]:
        """Enrolling a thousand stations commits thousands of times: not what is measured, so on
        PostgreSQL those commits do not wait for the disk (new sessions, such as the hub's, do again)."""
        if self.cluster is None:
            yield
            return
        name = self.dsn.rsplit("/", 1)[1] if self.dsn else ""
        self.cluster.psql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        try:
            yield
        finally:
            self.cluster.psql(f'ALTER DATABASE "{name}" RESET synchronous_commit')

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {"backend": self.kind}
        if self.cluster is not None:
            out["postgresql"] = self.cluster.psql("SHOW server_version").strip()
        return out


@contextlib.contextmanager
def backend(kind: str) -> Iterator[Backend]:
    if kind == "sqlite":
        yield Backend("sqlite")
        return
    from tests.pg_cluster import running

    # A hub serving 1,000 stations at once opens a pool per worker; the tests' 60 connections are
    # enough for two workers' pools, but not for comparing more: leave room.
    with running(durable=True, settings={"max_connections": "200"}) as cluster:
        name = f"bench{os.getpid()}"
        dsn = cluster.create_database(name)
        yield Backend("postgres", dsn, cluster)


def load() -> dict[str, object]:
    one, five, fifteen = os.getloadavg()
    return {"load_1_5_15": [round(one, 2), round(five, 2), round(fifteen, 2)], "cores": os.cpu_count()}
