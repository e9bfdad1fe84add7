"""`sanji node serve`: the staff page on 127.0.0.1 and the background sync loop.

The loop runs a sync round every ``interval`` seconds while the hub answers; when it does not, it
backs off exponentially (capped) with jitter, so a hundred stations coming back after an outage do
not all knock at the same second.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from node import client
from node.station import Station
from replica.errors import Refused, Unreachable

log = logging.getLogger("sanji.node")
STATION = web.AppKey("station", Station)
MAX_BACKOFF_S = 600.0


def next_delay(failures: int, interval: float, rng: random.Random) -> float:
    """Seconds to wait before the next round: the interval while healthy, else capped exponential
    backoff with full jitter."""
    if failures == 0:
        return interval
    ceiling = min(MAX_BACKOFF_S, interval * (2 ** min(failures, 10)))
    return rng.uniform(interval / 2, ceiling)


async def sync_loop(st: Station, interval: float) -> None:
    failures = 0
    rng = random.Random()
    while True:
        try:
            result = await client.sync_round(st)
            failures = 0
            if result.pushed or result.pulled:
                log.info("synced: pushed %d, pulled %d, pending %d", result.pushed, result.pulled, result.pending)
        except Unreachable as exc:
            failures += 1
            log.warning("%s", exc)
        except Refused as exc:
            failures += 1
            log.warning("sync refused: %s", exc)
        await asyncio.sleep(next_delay(failures, interval, rng))


async def index(request: web.Request) -> web.Response:
    from node.cli import status_dict

    st = request.app[STATION]
    s = status_dict(st, probe=False)
    body = (
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>便民服务站 · 三级</title>"
        f"<h1>{html.escape(str(s['name']))} ({html.escape(str(s['station']))})</h1>"
        f"<p>待上传 {s['pending']} · 最近同步 {html.escape(str(s['last_sync'] or '从未'))} · "
        f"事项目录 v{s['catalogue_version']}</p>"
        "<p>（受理界面尚未完成，请使用 `sanji node accept` / the staff UI is not built yet）</p>"
    )
    return web.Response(text=body, content_type="text/html")


def create_app(folder: Path, interval: float) -> web.Application:
    app = web.Application()

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        st = Station(folder)
        app[STATION] = st
        task = asyncio.create_task(sync_loop(st, interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        st.close()

    app.cleanup_ctx.append(ctx)
    app.router.add_get("/", index)
    return app


def serve(folder: Path, *, port: int, interval: float) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    st = Station(folder)
    from node.store import check

    result = check(st.db)
    st.close()
    if result != "ok":
        raise RuntimeError(f"station database failed its integrity check: {result}; restore from a backup")
    print(f"Sanji station UI on http://127.0.0.1:{port}/ (loopback only; Ctrl-C to stop)", flush=True)
    # Loopback only: the staff PC is shared, and citizens' data must not be reachable from the LAN.
    web.run_app(create_app(folder, interval), host="127.0.0.1", port=port, print=None, access_log=None)
