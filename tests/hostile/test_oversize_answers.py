"""A station's memory stays bounded whatever the path answers or the stick holds (issue 21, row 4).

A real hub is served on loopback behind a man-in-the-middle proxy (both in a thread of this process).
The proxy passes everything on, except that it answers a pull with 2 GiB of zeros streamed from one
reused 1 MiB block (never allocated whole), with and without a Content-Length. The station runs as a
real `sanji` process, which reports its own peak RSS (VmHWM) as it exits; the test prints it. Before
the caps the same pull cost 4151 MiB and the 1 GiB file 1077 MiB on the machine these were written on.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hub.app import HubConfig, create_app
from hub.feed import feed_page
from node.station import Station
from protocol.limits import FILE_MAX_BYTES, RESPONSE_MAX_BYTES, mib
from tests.conftest import World

ROOT = Path(__file__).resolve().parents[2]
TWO_GIB = 2 * 1024**3
ONE_GIB = 1024**3
BLOCK = bytes(1024 * 1024)
MAX_CHILD_RSS = 200 * 1024 * 1024  # generous: an idle `sanji` process is well under 100 MB


class Proxy:
    """A hub on one port and a man in the middle on another, in one event loop in a thread."""

    def __init__(self, hub_folder: Path) -> None:
        self.hub_folder = hub_folder
        self.flood: str | None = None  # "declared" | "streamed": how a pull is answered; None passes it on
        self.flood_sent = 0
        self.loop = asyncio.new_event_loop()
        self.runners: list[web.AppRunner] = []
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(30)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        hub_port = await self._serve(create_app(HubConfig(folder=self.hub_folder)))
        self.upstream = f"http://127.0.0.1:{hub_port}"
        self.session = aiohttp.ClientSession()
        proxy = web.Application(client_max_size=64 * 1024 * 1024)
        proxy.router.add_route("*", "/{tail:.*}", self._handle)
        self.url = f"http://127.0.0.1:{await self._serve(proxy)}"

    async def _serve(self, app: web.Application) -> int:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v1/sync/pull" and self.flood:
            return await self._flood(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "x-sanji-request")}
        async with self.session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                        data=await request.read()) as up:
            return web.Response(status=up.status, body=await up.read(),
                                headers={"Content-Type": up.headers.get("Content-Type", "application/octet-stream")})

    async def _flood(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.sanji.document"})
        if self.flood == "declared":
            resp.content_length = TWO_GIB
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        self.flood_sent = 0
        try:
            while self.flood_sent < TWO_GIB:
                await resp.write(BLOCK)
                self.flood_sent += len(BLOCK)
        except (ConnectionError, RuntimeError):
            pass  # the station hung up: what this test wants
        return resp

    def close(self) -> None:
        async def down() -> None:
            await self.session.close()
            for runner in reversed(self.runners):
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


# The station's own high-water mark, read by the station process itself as it exits. Not ru_maxrss:
# Linux carries the parent's high-water mark into a child across fork and exec, so wait4's figure is at
# least this test process's own size.
_MEASURED = """
import atexit, os, sys
def _hwm():
    with open("/proc/self/status") as f:
        kib = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    with open(os.environ["SANJI_TEST_HWM"], "w") as out:
        out.write(kib)
atexit.register(_hwm)
from sanji.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_child(*args: object) -> tuple[int, Any, str, int]:
    """Run `sanji ARGS --json` from this tree; (exit code, JSON, stderr, that process's peak RSS in bytes)."""
    with tempfile.TemporaryDirectory() as scratch:
        hwm = Path(scratch) / "hwm"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SANJI_TEST_HWM": str(hwm)}
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(name, None)
        proc = subprocess.run([sys.executable, "-c", _MEASURED, *map(str, args), "--json"], capture_output=True,
                              env=env, timeout=300)
        peak = int(hwm.read_text()) * 1024
    out = proc.stdout
    return proc.returncode, json.loads(out) if out.strip() else None, proc.stderr.decode(), peak


@pytest.fixture
def station(make_world: Callable[..., World]) -> Iterator[tuple[Path, Path]]:
    """(hub folder, station folder) of an enrolled village; neither is open in this process."""
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    hub_folder, st_folder = world.root / "hub", world.get("T1-V1").folder
    yield hub_folder, st_folder


@pytest.mark.parametrize("flood", ["streamed", "declared"])
def test_a_2_gib_answer_to_a_pull_is_refused_within_a_small_memory_bound(station: tuple[Path, Path],
                                                                          flood: str) -> None:
    hub_folder, st_folder = station
    proxy = Proxy(hub_folder)
    try:
        st = Station(st_folder)
        with st.transaction():
            st.meta.set("hub_url", proxy.url)
        st.close()
        proxy.flood = flood
        code, out, err, peak = run_child("node", "sync", st_folder)
        print(f"\n[{flood}] 2 GiB pull answer: station peak RSS {peak / 2**20:.1f} MiB, "
              f"proxy wrote {proxy.flood_sent / 2**20:.0f} MiB before the station hung up")
        assert code == 2, (code, out, err)
        assert out is not None and out["feed_problems"], out
        assert "过大" in out["feed_problems"][0] and mib(RESPONSE_MAX_BYTES) in out["feed_problems"][0]
        assert peak < MAX_CHILD_RSS, f"peak RSS {peak / 2**20:.0f} MiB"
        assert proxy.flood_sent < TWO_GIB // 4, "the station must stop reading at the cap, not drain the answer"

        code, status, err, _ = run_child("node", "status", st_folder)
        assert code == 0, err
        assert status["feed_quarantined"] == 1 and status["feed_skipped"] == 0, status
        assert "过大" in status["feed_quarantine_latest"]["reason"] and "过大" in status["last_error"]

        # The path behaves again: the station's next sync is an ordinary one.
        proxy.flood = None
        code, out, err, _ = run_child("node", "sync", st_folder)
        assert code == 0 and out["feed_problems"] == [], (code, out, err)
    finally:
        proxy.close()


def test_a_1_gib_file_links_and_a_pipe_on_the_stick_are_refused_unread(station: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    hub_folder, st_folder = station
    from hub.service import Hub

    hub = Hub.open(hub_folder)
    try:
        genuine = feed_page(hub, "T1-V1", after=0, catalogue_version=0)
    finally:
        hub.close()
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "T1-V1_feed_0000000000-0000000001.sjd").write_bytes(genuine)
    huge = stick / "T1-V1_feed_0000000001-0000000002.sjd"
    with huge.open("wb") as f:
        f.truncate(ONE_GIB)  # sparse: 1 GiB to whoever reads it, nothing on disk
    (stick / "zero.sjd").symlink_to("/dev/zero")
    (stick / "keys.sjd").symlink_to(st_folder / "node.db")
    os.mkfifo(stick / "pipe.sjd")  # a naive reader would wait on it for ever

    code, out, err, peak = run_child("node", "import", st_folder, stick)
    print(f"\n1 GiB file on the stick: station peak RSS {peak / 2**20:.1f} MiB")
    assert code == 2, (code, out, err)
    assert out["accepted"] == 1, out
    reasons = {Path(r["file"]).name: r["reason"] for r in out["rejected"]}
    assert set(reasons) == {huge.name, "zero.sjd", "keys.sjd", "pipe.sjd"}, reasons
    assert reasons[huge.name].startswith("too_large") and str(ONE_GIB) in reasons[huge.name]
    assert str(FILE_MAX_BYTES) in reasons[huge.name]
    assert reasons["zero.sjd"].startswith("symlink") and reasons["keys.sjd"].startswith("symlink")
    assert reasons["pipe.sjd"].startswith("not_a_file")
    assert peak < MAX_CHILD_RSS, f"peak RSS {peak / 2**20:.0f} MiB"
