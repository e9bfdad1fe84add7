"""Fixtures for the nightly job's tests: a district on loopback, driven through the `sanji` CLI.

The hub is the real aiohttp app (``hub.app.create_app``, optionally with the nightly scheduler of
``hub.server.nightly_context``) served on a free loopback port from a background thread with its own
event loop; it can be stopped and started again on the same folder, as an operator would. Commands
run in this process through ``sanji.cli.main`` with ``--json`` (the same argument parsing, library
calls, JSON document and exit code as the console script, without paying a Python start-up per
command). Tests that need a real `sanji hub serve` process start one with the e2e helpers.

All data is generated: ID numbers carry a GB 11643 check character computed here, names are
synthetic, phones are 139xxxxxxxx.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import random
import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aiohttp import web

from sanji.cli import main as sanji_main
from tests.applicants import People, accept_args, catalogue_doc, required_materials
from tests.hub_sql import PgTestConnection, hub_sql

CHINA = timezone(timedelta(hours=8))
DISTRICT = "360802"
TOWNSHIP = "360802-T01"
VILLAGE_A = f"{TOWNSHIP}-01"
VILLAGE_B = f"{TOWNSHIP}-02"


class Calendar:
    """Working days from the catalogue's own calendar: weekends off, holidays off, make-up days on."""

    def __init__(self) -> None:
        cal = catalogue_doc()["calendar"]
        self.holidays = {date.fromisoformat(d) for y in cal.values() for d in y.get("holidays", [])}
        self.makeup = {date.fromisoformat(d) for y in cal.values() for d in y.get("makeup_workdays", [])}

    def working(self, d: date) -> bool:
        if d in self.holidays:
            return False
        return d in self.makeup or d.weekday() < 5

    def add(self, start: date, n: int) -> date:
        d = start
        while n:
            d += timedelta(days=1)
            n -= self.working(d)
        return d

    def back(self, start: date, n: int) -> date:
        """The day from which ``add(day, n)`` lands on ``start`` (``start`` must be a working day)."""
        d = start
        while n:
            d -= timedelta(days=1)
            n -= self.working(d)
        # add() counts from the day after; step back over non-working days is harmless for add().
        return d


def back_entry_line(people: People, item: str, accepted_at: datetime, *, deferred: tuple[str, ...] = ()) -> str:
    """One `node accept --from` line (the shape of shared/bench/applications-20k.jsonl)."""
    return json.dumps(
        {
            "station": "ignored",
            "item": item,
            "applicant": {"name": people.name(), "id_number": people.id_number(), "phone": people.phone()},
            "address": people.address(),
            "materials": [
                {"name": m, "status": "deferred" if m in deferred else "submitted"} for m in required_materials(item)
            ],
            "accepted_at": accepted_at.replace(microsecond=0).isoformat(),
            "note": "",
        },
        ensure_ascii=False,
    )


# -- the CLI, in this process -------------------------------------------------------------------------


class CliResult(NamedTuple):
    code: int
    data: Any
    stderr: str


def run_sanji(*args: object) -> CliResult:
    """`sanji ARGS... --json` through the console script's own entry point, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = sanji_main([*(str(a) for a in args), "--json"])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    # Commands leave their Station/Hub objects to the garbage collector (they hold reference cycles):
    # collect now so no stale SQLite connection outlives the command, as it would not outlive a process.
    gc.collect()
    text = out.getvalue().strip()
    data: Any = None
    if text:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    return CliResult(code, data, err.getvalue())


def ok(*args: object) -> Any:
    res = run_sanji(*args)
    assert res.code == 0, f"sanji {' '.join(map(str, args))} exited {res.code}: {res.stderr.strip()}"
    assert res.data is not None, f"sanji {' '.join(map(str, args))} printed no JSON document"
    return res.data


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the hub, served from a thread ----------------------------------------------------------------------


class ServedHub:
    """The hub's real aiohttp app on loopback, in a background thread; start and stop at will."""

    def __init__(self, folder: Path, port: int, nightly: str | None = None) -> None:
        self.folder, self.port, self.nightly = folder, port, nightly
        self.url = f"http://127.0.0.1:{port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from hub.app import HubConfig, create_app
        from hub.server import nightly_context
        from replica.schedule import When

        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        async def boot() -> None:
            extra = [nightly_context(When.parse(self.nightly))] if self.nightly else []
            app = create_app(HubConfig(folder=self.folder, port=self.port), extra_contexts=extra)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._runner = runner

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=main, name=f"hub-{self.port}", daemon=True)
        self._thread.start()
        assert ready.wait(20), "the hub did not start within 20 s"
        if failure:
            raise failure[0]

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop, runner = self._loop, self._runner
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=20)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=20)
        self._loop = self._thread = self._runner = None
        gc.collect()

    @contextlib.contextmanager
    def serving(self) -> Iterator[ServedHub]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


# -- a district -------------------------------------------------------------------------------------------


@dataclass
class Node:
    dir: Path
    code: str

    def accept(self, people: People, item: str = "360802-0001", *, defer: tuple[str, ...] = ()) -> dict[str, Any]:
        doc = ok(*accept_args(self.dir, people, item, defer=defer))
        assert doc["status"] == "accepted"
        return dict(doc)

    def accept_lines(self, lines: list[str], tmp: Path) -> dict[str, Any]:
        path = tmp / f"{self.code}-back-entry-{random.randrange(10**9)}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        doc = ok("node", "accept", self.dir, "--from", path)
        assert doc["refused"] == [], doc["refused"]
        return dict(doc)

    def sync(self) -> dict[str, Any]:
        return dict(ok("node", "sync", self.dir))

    def reconcile(self) -> dict[str, Any]:
        return dict(ok("node", "reconcile", self.dir))

    def status(self) -> dict[str, Any]:
        return dict(ok("node", "status", self.dir))

    def view(self) -> dict[str, tuple[str, str]]:
        """id → (number, status) of every application of this station that the station holds."""
        apps = ok("node", "applications", self.dir)["applications"]
        return {str(a["id"]): (str(a["number"]), str(a["status"])) for a in apps if a["station"] == self.code}

    def numbers(self) -> list[str]:
        return sorted(number for number, _ in self.view().values())

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.dir / "node.db", timeout=10)


@dataclass
class District:
    root: Path
    hub_dir: Path
    hub: ServedHub
    a: Node
    b: Node
    extra: list[ServedHub] = field(default_factory=list)

    def hub_apps(self, station: str) -> list[dict[str, Any]]:
        return list(ok("hub", "applications", self.hub_dir, "--station", station)["applications"])

    def hub_view(self, station: str) -> dict[str, tuple[str, str]]:
        """id → (number, status) of every application the hub holds for ``station``."""
        apps = self.hub_apps(station)
        view = {str(a["id"]): (str(a["number"]), str(a["status"])) for a in apps}
        assert len(view) == len(apps), "the hub lists an application twice"
        return view

    def hub_numbers(self, station: str) -> list[str]:
        """Every application number the hub holds for ``station``, repeats included, sorted."""
        return sorted(str(a["number"]) for a in self.hub_apps(station))

    def alerts(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in ok("hub", "status", self.hub_dir)["alerts"] if a["kind"] == kind]

    def hub_db(self) -> sqlite3.Connection | PgTestConnection:
        """The hub's store for a test's own SQL, on either backend (``tests/hub_sql.py``)."""
        return hub_sql(self.hub_dir)


def make_district(root: Path, *, nightly: str | None = None, database: str | None = None) -> District:
    """`hub init` (with ``database``, on PostgreSQL), a township and two villages enrolled online. The
    hub is left stopped."""
    hub_dir = root / "hub"
    doc = ok("hub", "init", hub_dir, "--district", DISTRICT, *(("--database", database) if database else ()))
    assert doc["hub_id"] == DISTRICT
    ok("hub", "enroll", hub_dir, "--station", TOWNSHIP, "--name", "测试镇便民服务中心", "--tier", "township")
    tokens = {
        code: ok(
            "hub",
            "enroll",
            hub_dir,
            "--station",
            code,
            "--name",
            f"测试村{code[-2:]}",
            "--tier",
            "village",
            "--parent",
            TOWNSHIP,
        )["token"]
        for code in (VILLAGE_A, VILLAGE_B)
    }
    hub = ServedHub(hub_dir, free_port(), nightly)
    nodes = []
    with hub.serving():
        for code, name in ((VILLAGE_A, "node-a"), (VILLAGE_B, "node-b")):
            got = ok("node", "init", root / name, "--hub", hub.url, "--token", tokens[code])
            assert got["station"] == code
            nodes.append(Node(root / name, code))
    return District(root, hub_dir, hub, nodes[0], nodes[1])


@pytest.fixture(scope="session", autouse=True)
def _frozen_heap() -> None:
    """Move what is alive now (modules, pytest's own objects) out of the collector's sight, so the
    collection after each command only walks what the command made."""
    gc.collect()
    gc.freeze()


@pytest.fixture
def people(request: pytest.FixtureRequest) -> People:
    return People(seed=sum(map(ord, request.node.name)))


@pytest.fixture
def district(tmp_path: Path, hub_database: str | None) -> Iterator[District]:
    d = make_district(tmp_path, database=hub_database)
    try:
        yield d
    finally:
        d.hub.stop()
