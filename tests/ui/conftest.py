"""Fixtures for the screens: a district built for real in a temporary folder, the hub and the station UI
as real processes, and Debian's Chromium driven by Playwright.

Applicants are generated (``make_id`` computes the GB 11643 check digit itself), never real people.
Browser tests use the system Chromium at /usr/bin/chromium and never download a browser; they are
skipped with a clear reason when it or Playwright is missing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.applicants import id_check_char

ROOT = Path(__file__).resolve().parents[2]
SCREENS = ROOT / "screens"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "s3cret-operator-pw"
ITEM_PROMISED = "360802-0004"  # 最低生活保障申请: promised, 20 working days, one deferrable material
ITEM_IMMEDIATE = "360802-0001"  # 城乡居民基本养老保险参保登记: immediate, decided by the township


def make_id(serial: int, born: date = date(1984, 5, 17), region: str = "360802") -> str:
    """A made-up ID number with a correct GB 11643 check character (computed here, not by Sanji)."""
    first17 = f"{region}{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + id_check_char(first17)


def wrong_check(id_number: str) -> str:
    return id_number[:-1] + next(c for c in "0123456789X" if c != id_number[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sanji(*argv: str, stdin: str = "", expect: int = 0) -> dict[str, Any]:
    """Run one real `sanji` command in this process (as the demo does) and return its JSON.

    It runs on a worker thread: Playwright's sync API keeps an event loop running on the test's
    thread, and commands that talk to the hub start their own with ``asyncio.run``."""
    from sanji.cli import main

    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                return main([*argv, "--json"])
        finally:
            sys.stdin = old_stdin

    with ThreadPoolExecutor(max_workers=1) as pool:
        code = pool.submit(run).result()
    assert code == expect, f"sanji {' '.join(argv)} exited {code}: {err.getvalue()}"
    text = out.getvalue().strip()
    return json.loads(text) if text else {}


class Proc:
    """A `sanji ... serve` process that can be stopped and started again, like a real outage."""

    def __init__(self, argv: list[str], url: str, log: Path) -> None:
        self.argv, self.url, self.log = argv, url, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.out: Any = None

    def up(self, ready_path: str = "/healthz") -> None:
        exe = Path(sys.executable).with_name("sanji")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "sanji.cli"]
        self.out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*cmd, *self.argv], stdout=self.out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[:2]} exited early; see {self.log}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=1) as r:
                    if r.status < 500:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.argv[:2]} did not start; see {self.log}")

    def down(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.out.close()


class District:
    """A hub, a township, two villages (one enrolled online, one only registered) and a field device."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hub_dir = root / "hub"
        self.hub_port = free_port()
        self.hub_url = f"http://127.0.0.1:{self.hub_port}"
        self.hub = Proc(
            ["hub", "serve", str(self.hub_dir), "--port", str(self.hub_port)], self.hub_url, root / "hub.log"
        )
        self.node_dir = root / "gangtang"
        self.node_port = free_port()
        self.node_url = f"http://127.0.0.1:{self.node_port}"
        self.node = Proc(
            ["node", "serve", str(self.node_dir), "--port", str(self.node_port), "--interval", "3600"],
            self.node_url,
            root / "node.log",
        )
        self.serial = 0

    def build(self) -> None:
        sanji("hub", "init", str(self.hub_dir), "--district", "360802", "--name", "吉州区")
        sanji("hub", "add-operator", str(self.hub_dir), "--user", "zhangwei", stdin=PASSWORD + "\n")
        tokens = {}
        for code, name, tier, parent in (
            ("360802-T01", "兴桥镇便民服务中心", "township", ""),
            ("360802-T01-01", "兴桥镇岗塘村便民服务站", "village", "360802-T01"),
            ("360802-T01-05", "兴桥镇塅口村便民服务站", "village", "360802-T01"),
            ("360802-F01", "踏勘终端一号", "field", ""),
        ):
            args = ["hub", "enroll", str(self.hub_dir), "--station", code, "--name", name, "--tier", tier]
            tokens[code] = sanji(*args, *(["--parent", parent] if parent else []))["token"]
        self.hub.up()
        sanji("node", "init", str(self.node_dir), "--hub", self.hub_url, "--token", tokens["360802-T01-01"])
        sanji("node", "init", str(self.root / "township"), "--hub", self.hub_url, "--token", tokens["360802-T01"])

    def applicant(self) -> dict[str, str]:
        self.serial += 1
        return {
            "name": f"测试申请人{self.serial:02d}",
            "id_number": make_id(self.serial),
            "phone": f"139{self.serial:08d}",
        }

    def accept(self, item: str = ITEM_IMMEDIATE) -> dict[str, Any]:
        p = self.applicant()
        materials = ["居民身份证", "户口簿"] + (
            ["家庭收入情况声明", "家庭经济状况核对授权书"] if item == ITEM_PROMISED else []
        )
        args = [
            "node",
            "accept",
            str(self.node_dir),
            "--item",
            item,
            "--name",
            p["name"],
            "--id-number",
            p["id_number"],
            "--phone",
            p["phone"],
            "--address",
            "兴桥镇岗塘村3组",
        ]
        for m in materials:
            args += ["--material", m]
        return {**sanji(*args), **p}

    def conflict(self) -> str:
        """Station and hub edit the same application concurrently: two open conflicts (note, status)."""
        number = str(self.accept()["number"])
        sanji("node", "sync", str(self.node_dir))
        sanji(
            "node",
            "transition",
            str(self.node_dir),
            number,
            "--to",
            "supplement_requested",
            "--note",
            "请补充户口簿复印件",
        )
        sanji("hub", "transition", str(self.hub_dir), number, "--to", "under_review", "--note", "转入审查")
        sanji("node", "sync", str(self.node_dir))
        return number

    def quarantine(self) -> str:
        """An authentic change outside the station's rights (a village writing a decision): held at ingest."""
        from node import commands
        from node.station import Station

        number = str(self.accept()["number"])
        st = Station(self.node_dir)
        try:
            app_id = commands.find(st, number)
            with st.transaction():
                st.write_unchecked("application", app_id, {"decision": "准予（村站越权写入）"}, {})
        finally:
            st.close()
        sanji("node", "sync", str(self.node_dir))
        return number

    def close(self) -> None:
        self.node.down()
        self.hub.down()


@pytest.fixture
def district(tmp_path: Path) -> Iterator[District]:
    d = District(tmp_path)
    try:
        d.build()
        yield d
    finally:
        d.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop running on this thread while
    # it is started, and the aiohttp-level tests after the browser modules need the thread to themselves.
    if not CHROMIUM.exists():
        missing = "Debian's Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: CI must install it (.ci/run does)")  # in CI a browser test never skips
        pytest.skip(missing)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN", timezone_id="Asia/Shanghai")
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    # Nothing may be fetched from outside Sanji: any request to another host fails the test.
    outside: list[str] = []

    from tests.ui.a11y import Watch, watching  # fails loudly (not a skip) without axe-playwright-python

    watch = Watch()

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1", "data:", "about:")):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    pg.route("**/*", route)
    pg.problems = problems  # type: ignore[attr-defined]
    pg.axe = watch  # type: ignore[attr-defined]
    with watching(pg, watch):  # every page the test visits is checked by axe (tests/ui/a11y.py)
        yield pg
    if not pg.is_closed():
        watch.settle(pg)  # and the page the test ended on
    context.close()
    assert not outside, f"pages tried to load from outside Sanji: {outside}"
    real = [p for p in problems if "Failed to load resource" not in p]
    assert not real, f"browser reported errors: {real}"
    watch.assert_clean()


def wait_js(pg: Any, expression: str, timeout_s: float = 10.0) -> None:
    """Wait until ``expression`` is true in the page, asking over the DevTools protocol.

    Not ``page.wait_for_function``: it re-evaluates a string predicate with ``eval`` from the page's own
    timers, which the pages' CSP (script-src 'self') refuses, so it only worked when the first try was
    already true."""
    deadline = time.monotonic() + timeout_s
    while not pg.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {expression}")
        time.sleep(0.1)


def shot(pg: Any, name: str, *, full_page: bool = True) -> Path:
    """A screenshot of a main page for docs/screens.md; kept small (PNG, 1x, page width 1280)."""
    SCREENS.mkdir(exist_ok=True)
    path = SCREENS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=full_page)
    return path


# -- a hub and a station in this process (tests/ui/inproc.py), for the aiohttp-level tests ---------------


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Any]:
    from tests.ui.inproc import Pair  # inproc imports this module's helpers

    p = Pair(tmp_path)
    yield p
    p.close()


@pytest.fixture
async def hub_client(pair: Any) -> AsyncIterator[Any]:
    """The hub's whole app (dashboard and sync routes) over the pair's hub folder."""
    from aiohttp.test_utils import TestClient, TestServer

    from hub.app import HubConfig, create_app

    async with TestClient(TestServer(create_app(HubConfig(folder=pair.root / "hub")))) as c:
        yield c
