"""End-to-end fixtures: real `sanji` processes on loopback, driven only through CONTRACT.md's surface.

Everything here talks to Sanji the way an operator or a station would: the `sanji` console script
(always with `--json`) and the hub's HTTP routes. The only other window into a hub is a read-only
look at its store (``tests/hub_sql.py``: `hub.db` through sqlite3, or the PostgreSQL database the folder
names), used to time a crash and to check the store after one.

All test data is generated: ID numbers carry a correct GB 11643 check character but name nobody;
phone numbers are 139xxxxxxxx; names are made of a generated surname and digits.

Which modules run on both backends (issue 15). A module whose subject is the hub's behaviour says
``pytestmark = pytest.mark.usefixtures("hub_backend")``: its ``hub`` and ``district_hub`` are then made
by `sanji hub init` on SQLite and, in a fresh database of the throwaway cluster, with ``--database``:
  test_sync_e2e, test_crash (kill -9 mid-push and mid-import), test_key_rotation, test_enrol_mitm (the
  PostgreSQL variant on one representative rogue answer: the three differ only at the station),
  test_staff_from_hub, test_staff_author, test_staff_reset, test_catalogue_and_show, test_tracking, test_one_stick,
  test_relay_e2e, test_set_hub (the two cases about the station alone stay on SQLite, marked),
  test_back_entry_cli, test_json_failures (its hub's failures; the usage ones open no store), and
  test_postgres_hub (PostgreSQL's own: `init --database`, a district on either, two processes).
The rest stay on SQLite, and need nothing else: test_demo (the demo makes its own SQLite district by
design), test_port_in_use, test_wrong_folder and test_not_a_hub (messages about folders, ports and web
pages, decided before any store is opened), test_oversized_header (HTTP header limits, refused before
the store is asked anything), test_sync_lock (the station's own lock), and test_readme_examples (the
README's commands as written, which make a SQLite hub).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hub.store import database_of
from tests.applicants import People, accept_args, catalogue_items, required_materials
from tests.e2e.processes import (
    CLI_TIMEOUT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    CliResult,
    free_loopback_port,
    healthz,
    ok,
    parallel,
    run_sanji,
    start_sanji,
    stop_process,
)
from tests.hub_sql import hub_sql
from tests.pg_cluster import Cluster

CHINA = timezone(timedelta(hours=8))
DISTRICT = "360802"
TOWNSHIP = "360802-T01"


# -- the hub ------------------------------------------------------------------------------------------


class HubServer:
    """One `sanji hub serve` process."""

    def __init__(self, folder: Path, port: int, log: Path) -> None:
        self.folder, self.port, self.log = folder, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_sanji("hub", "serve", self.folder, "--port", self.port, log=self.log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited {self.proc.returncode} at start:\n{self.log_text()}")
            doc = healthz(self.url, timeout=1.0)
            if doc is not None and doc.get("ok") is True:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"hub did not answer /healthz within {START_TIMEOUT} s:\n{self.log_text()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the hub gets no chance to finish anything."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""


@dataclass
class Hub:
    """A hub folder made by `sanji hub init` (its store in ``hub.db``, or in the PostgreSQL database its
    ``hub-database.json`` names), and the servers started on it."""

    dir: Path
    port: int
    servers: list[HubServer] = field(default_factory=list)
    # Codes of the villages made under it by ``new_village``: per hub, so each backend's hub has its own.
    villages: Iterator[int] = field(default_factory=lambda: iter(range(1, 90)))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.dir / "hub.db"

    @property
    def server(self) -> HubServer | None:
        return self.servers[-1] if self.servers else None

    def start(self) -> HubServer:
        """Start `sanji hub serve` and wait for /healthz. Stopped at teardown by the fixture."""
        server = HubServer(self.dir, self.port, self.dir.parent / f"hub-serve-{len(self.servers) + 1}.log")
        self.servers.append(server)
        server.start()
        return server

    def ensure_running(self) -> HubServer:
        if self.server is not None and self.server.running and healthz(self.url) is not None:
            return self.server
        self.stop_all()
        return self.start()

    @contextlib.contextmanager
    def serving(self) -> Iterator[HubServer]:
        """`sanji hub serve` for the duration of the block; always stopped (SIGTERM, then SIGKILL)."""
        server = self.start()
        try:
            yield server
        finally:
            server.stop()

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()

    def enroll(self, station: str, *, tier: str, parent: str = "", name: str = "", out: Path | None = None) -> str:
        args: list[object] = [
            "hub",
            "enroll",
            self.dir,
            "--station",
            station,
            "--name",
            name or f"站点{station}",
            "--tier",
            tier,
        ]
        if parent:
            args += ["--parent", parent]
        if out is not None:
            args += ["--out", out, "--hub-url", self.url]
        doc = ok(*args)
        assert doc["station"] == station
        return str(doc["token"])

    def applications(self, station: str | None = None) -> list[dict[str, Any]]:
        args: list[object] = ["hub", "applications", self.dir]
        if station:
            args += ["--station", station]
        return list(ok(*args)["applications"])

    def numbers(self, station: str | None = None) -> list[str]:
        return [str(a["number"]) for a in self.applications(station)]

    def status(self) -> dict[str, Any]:
        return dict(ok("hub", "status", self.dir))

    @property
    def on_postgres(self) -> bool:
        return database_of(self.dir) is not None

    def count_readonly(self, sql: str = "SELECT COUNT(*) FROM applications") -> int:
        """A read-only look at the store while the hub runs (on SQLite, WAL lets a reader in beside the
        writer; on PostgreSQL a reader never waits for one)."""
        if not self.on_postgres:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            try:
                return int(conn.execute(sql).fetchone()[0])
            finally:
                conn.close()
        pg = hub_sql(self.dir)
        try:
            return int(pg.execute(sql).fetchone()[0])
        finally:
            pg.close()

    def store_check(self) -> str:
        """Whether the store is whole after a crash ("ok", or what is wrong): SQLite's quick check of
        hub.db; on PostgreSQL, whose crash safety is the server's own (and the server did not crash, the
        hub process did), that the database answers and holds the hub."""
        if not self.on_postgres:
            return quick_check(self.db)
        pg = hub_sql(self.dir)
        try:
            (held,) = pg.execute("SELECT COUNT(*) FROM hub_meta WHERE key='hub_id'").fetchone()
        finally:
            pg.close()
        return "ok" if held == 1 else "the database holds no hub"

    def stored_bytes(self) -> bytes:
        """Everything the hub stores, as bytes: the files of hub.db, or every value of every table of
        its PostgreSQL database; for checks that a secret is not kept."""
        if not self.on_postgres:
            return b"".join(p.read_bytes() for p in self.dir.glob("hub.db*"))
        pg = hub_sql(self.dir)
        out = bytearray()
        try:
            tables = [t for (t,) in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for table in tables:
                for row in pg.execute(f'SELECT * FROM "{table}"').fetchall():
                    for cell in row:
                        out += cell if isinstance(cell, bytes) else str(cell).encode()
        finally:
            pg.close()
        return bytes(out)


def quick_check(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return "; ".join(str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall())
    finally:
        conn.close()


# -- stations -----------------------------------------------------------------------------------------


@dataclass
class Node:
    dir: Path
    code: str

    def accept(self, people: People, item: str = "360802-0001", *, defer: tuple[str, ...] = ()) -> dict[str, Any]:
        """Accept one generated applicant's application: every required material submitted except `defer`."""
        doc = ok(*accept_args(self.dir, people, item, defer=defer))
        assert doc["status"] == "accepted"
        return dict(doc)

    def sync(self, timeout: float = CLI_TIMEOUT) -> CliResult:
        return run_sanji("node", "sync", self.dir, timeout=timeout)

    def status(self) -> dict[str, Any]:
        return dict(ok("node", "status", self.dir))

    def applications(self) -> list[dict[str, Any]]:
        return list(ok("node", "applications", self.dir)["applications"])

    def numbers(self) -> list[str]:
        return [str(a["number"]) for a in self.applications()]

    def by_number(self) -> dict[str, dict[str, Any]]:
        return {str(a["number"]): a for a in self.applications()}


def init_online(hub: Hub, folder: Path, station: str, *, tier: str = "village", parent: str = TOWNSHIP) -> Node:
    """Register the station at the hub and enrol it over HTTP (the hub must be serving)."""
    token = hub.enroll(station, tier=tier, parent=parent)
    doc = ok("node", "init", folder, "--hub", hub.url, "--token", token)
    assert doc["station"] == station and doc["tier"] == tier
    assert doc["catalogue_version"] >= 1
    return Node(folder, station)


# -- generated people and items -----------------------------------------------------------------------


def village_items() -> list[str]:
    return sorted(code for code, it in catalogue_items().items() if "village" in it["accepted_at"])


def application_lines(people: People, n: int, *, now: datetime | None = None) -> list[str]:
    """`n` back-entry lines in the shape of shared/bench/applications-20k.jsonl, all acceptable at a
    village: items whose `accepted_at` includes the village tier, every required material submitted,
    acceptance times in the last few days (never in the future)."""
    now = now or datetime.now(CHINA)
    items = village_items()
    lines = []
    for i in range(n):
        item = people.rng.choice(items)
        at = now - timedelta(days=3) + timedelta(seconds=i * 30)
        lines.append(
            json.dumps(
                {
                    "station": "ignored",
                    "item": item,
                    "applicant": {"name": people.name(), "id_number": people.id_number(), "phone": people.phone()},
                    "address": people.address(),
                    "materials": [{"name": m, "status": "submitted"} for m in required_materials(item)],
                    "accepted_at": at.replace(microsecond=0).isoformat(),
                    "note": "",
                },
                ensure_ascii=False,
            )
        )
    return lines


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def free_port() -> int:
    return free_loopback_port()


@pytest.fixture
def sanji_cli() -> Any:
    """The CLI runner: `sanji_cli(*args)` -> (exit code, parsed JSON or None, stderr)."""
    return run_sanji


@pytest.fixture
def people(request: pytest.FixtureRequest) -> People:
    return People(seed=sum(map(ord, request.node.name)))


def _init_hub(folder: Path, port: int, database: str | None = None) -> Hub:
    doc = ok("hub", "init", folder, "--district", DISTRICT, *(("--database", database) if database else ()))
    assert doc["hub_id"] == DISTRICT and doc["catalogue_version"] == 1
    return Hub(folder, port)


@pytest.fixture
def hub(tmp_path: Path, free_port: int, hub_database: str | None) -> Iterator[Hub]:
    """`sanji hub init` in a fresh folder (in a fresh PostgreSQL database when the test runs on that
    backend); any server started on it is stopped at teardown."""
    h = _init_hub(tmp_path / "hub", free_port, hub_database)
    try:
        yield h
    finally:
        h.stop_all()


class DistrictHubs:
    """The module's shared district hub, one per backend, each made the first time a test asks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, Hub] = {}
        self.databases: list[str] = []
        self.cluster: Cluster | None = None

    def get(self, cluster: Cluster | None) -> Hub:
        """The SQLite hub, or with the throwaway ``cluster`` the PostgreSQL one."""
        backend = "sqlite" if cluster is None else "postgres"
        if backend not in self.made:
            database = None
            if cluster is not None:
                self.cluster = cluster
                name = f"e2e{os.getpid()}_{len(self.databases) + 1}_{random.randrange(10**6)}"
                database = cluster.create_database(name)
                self.databases.append(name)
            h = _init_hub(self.root / backend / "hub", free_loopback_port(), database)
            h.enroll(TOWNSHIP, tier="township", name="测试镇便民服务中心")
            self.made[backend] = h
        return self.made[backend]

    def close(self) -> None:
        for h in self.made.values():
            h.stop_all()
        for name in self.databases:
            assert self.cluster is not None
            self.cluster.drop_database(name)


@pytest.fixture(scope="module")
def district_hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistrictHubs]:
    hubs = DistrictHubs(tmp_path_factory.mktemp("district"))
    try:
        yield hubs
    finally:
        hubs.close()


@pytest.fixture
def district_hub(district_hubs: DistrictHubs, request: pytest.FixtureRequest) -> Hub:
    """One hub per module (and per backend) with the township enrolled; tests add their own villages
    under it. On PostgreSQL when the test runs with ``hub_backend`` postgres."""
    on_pg = "hub_backend" in request.fixturenames and request.getfixturevalue("hub_backend") == "postgres"
    return district_hubs.get(request.getfixturevalue("pg_cluster") if on_pg else None)


@dataclass
class District:
    hub: Hub
    a: Node
    b: Node


@pytest.fixture
def new_village(district_hub: Hub, tmp_path: Path) -> Callable[[], Node]:
    """Makes fresh villages under the shared township, enrolled online; the hub is left serving.

    The hub folder is shared by the module's tests (each test has its own stations), so a test
    compares the hub before and after, or looks at its own stations, never at absolute totals.
    """
    district_hub.ensure_running()

    def make() -> Node:
        code = f"{TOWNSHIP}-{next(district_hub.villages):02d}"
        return init_online(district_hub, tmp_path / f"node-{code}", code)

    return make


@pytest.fixture
def district(district_hub: Hub, new_village: Callable[[], Node]) -> District:
    """The shared hub, serving, and two fresh villages under its township."""
    a, b = parallel(new_village, new_village)
    return District(district_hub, a, b)
