"""A real hub on loopback behind a man in the middle, and a station run as a real `sanji` process.

Both servers run in one event loop in a thread of the test process. The proxy passes every request on
to the hub, except as a test tells it: answer a pull with 2 GiB (``flood``), or with an old genuine
page (``replay``). ``run_child`` runs `sanji ... --json` from this tree and returns the station
process's own peak memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hub.app import HubConfig, create_app

ROOT = Path(__file__).resolve().parents[2]
TWO_GIB = 2 * 1024**3
BLOCK = bytes(1024 * 1024)


class Proxy:
    """A hub on one port and a man in the middle on another, in one event loop in a thread."""

    def serve(self, station_folder: Path) -> None:
        """Put this proxy between the station in ``station_folder`` and its hub."""
        from node.station import Station

        st = Station(station_folder)
        try:
            with st.transaction():
                st.meta.set("hub_url", self.url)
        finally:
            st.close()

    def __init__(self, hub_folder: Path) -> None:
        self.hub_folder = hub_folder
        self.flood: str | None = None  # "declared" | "streamed": how a pull is answered; None passes it on
        self.replay: bytes | None = None  # an old genuine page to answer every pull with (a freeze)
        self.last_pull = b""  # the last genuine page the hub answered a pull with
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
        if request.path == "/v1/sync/pull" and self.replay is not None:
            return web.Response(body=self.replay, content_type="application/vnd.sanji.document")
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "x-sanji-request")}
        async with self.session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=await request.read()
        ) as up:
            body = await up.read()
            if request.path == "/v1/sync/pull" and up.status == 200:
                self.last_pull = body
            return web.Response(
                status=up.status,
                body=body,
                headers={"Content-Type": up.headers.get("Content-Type", "application/octet-stream")},
            )

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
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURED, *map(str, args), "--json"], capture_output=True, env=env, timeout=300
        )
        peak = int(hwm.read_text()) * 1024
    out = proc.stdout
    return proc.returncode, json.loads(out) if out.strip() else None, proc.stderr.decode(), peak
