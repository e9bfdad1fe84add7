"""The hub's HTTP face: one ``create_app(config)`` factory, no module-level state.

The factory opens the hub in a cleanup context and mounts the route packages: the sync routes, blobs
and enrolment for stations (``hub/web/``), the operator dashboard (``hub/dashboard/``), the metrics
(``hub/metrics.py``) and the citizen's public tracking page (``hub/web/track.py``). What the routes
read from the app is keyed in ``hub/appkeys.py`` (and the read model's key in ``hub/reads``), so no
route module imports this one.

Beside the hub it opens the read model (``hub/reads``): the pages, ``/metrics`` and the tracking page
read and render in its threads over read-only connections, while the loop keeps the serving connection
for the sync handlers' group committer and the operators' writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from hub import shared_state
from hub.appkeys import COMMITTER, HUB, RECONCILE_CACHE, WRITER
from hub.committer import Committer
from hub.dashboard import add_dashboard_routes
from hub.metrics import add_metrics
from hub.reads import READS, ReadModel
from hub.reconcile import TreeCache
from hub.service import Hub
from hub.web import http_log
from hub.web.blobs import add_blob_routes
from hub.web.enrolment import add_enrolment_routes
from hub.web.errors import errors_middleware
from hub.web.sync import MAX_PUSH_BYTES, add_sync_routes
from hub.web.track import add_track_routes

SERVE_CACHE_KIB = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class HubConfig:
    folder: Path
    host: str = "127.0.0.1"
    port: int = 8700
    nightly: str = "02:00"
    allow_unsealed: bool = False  # test harnesses only: see Hub.allow_unsealed


CONFIG = web.AppKey("config", HubConfig)


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = Hub.open(app[CONFIG].folder)
    hub.allow_unsealed = app[CONFIG].allow_unsealed
    app[HUB] = hub
    # A serving hub keeps its working set in SQLite's page cache (up to 64 MB, allocated as used) rather
    # than the default 2 MB: with hundreds of stations the index pages of every table are hot.
    hub.store.set_cache_kib(SERVE_CACHE_KIB)
    # The group committer's own hub over its own connection, used only in the committer's thread
    # (hub/committer.py): the pieces it runs (taking in batches, noting what stations report) are
    # built on it, never on the loop's hub.
    writer = Hub.open(app[CONFIG].folder)
    writer.allow_unsealed = app[CONFIG].allow_unsealed
    writer.store.set_cache_kib(SERVE_CACHE_KIB)
    committer = Committer(writer.store)
    committer.start()
    app[WRITER] = writer
    app[COMMITTER] = committer
    reads = ReadModel(hub)
    app[READS] = reads
    yield
    await committer.stop()
    writer.close()
    await asyncio.to_thread(reads.close)  # waits for pages under way, without holding the loop
    hub.close()


Context = Callable[[web.Application], AsyncIterator[None]]


@web.middleware
async def _catch_up(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before each request: what another process (a second worker, the CLI) changed underneath the
    loop's hub (``hub/shared_state.py``)."""
    if HUB in request.app:
        shared_state.catch_up(request.app[HUB])
    return await handler(request)


def create_app(config: HubConfig, *, extra_contexts: list[Context] | None = None) -> web.Application:
    app = web.Application(middlewares=[errors_middleware, _catch_up], client_max_size=MAX_PUSH_BYTES + 1024)
    http_log.install()  # requests the HTTP parser refuses: one log line each, no traceback
    app[CONFIG] = config
    app.cleanup_ctx.append(_hub_ctx)
    for ctx in extra_contexts or []:
        app.cleanup_ctx.append(ctx)
    app[RECONCILE_CACHE] = TreeCache()
    add_sync_routes(app)  # healthz, push, pull, reconcile (hub/web/sync.py)
    add_enrolment_routes(app)  # enrolment by challenge, and the hub key history (hub/web/enrolment.py)
    add_blob_routes(app)  # photos and scans: resumable chunked uploads (hub/web/blobs.py)
    add_dashboard_routes(app)  # the operator dashboard at / (hub/dashboard/)
    add_metrics(app)  # GET /metrics, Prometheus text format (hub/metrics.py)
    add_track_routes(app, config.folder)  # the citizen's public tracking page, no login (hub/web/track.py)
    return app
