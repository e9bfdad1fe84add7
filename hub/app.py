"""The hub's HTTP face: one ``create_app(config)`` factory, no module-level state.

Handlers follow four steps: read bytes (size-capped), decode and verify, call the library, reply. One
middleware turns the protocol's typed errors into 4xx answers with a reason, so a malformed or forged
request changes nothing and the hub keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hub import http_log
from hub.blobs import add_blob_routes
from hub.committer import Committer
from hub.dashboard import add_dashboard_routes
from hub.enrol_routes import add_enrolment_routes
from hub.feed import feed_page
from hub.ingest import FrameAck, ingest_frame
from hub.metrics import add_metrics
from hub.reconcile import TreeCache
from hub.reconcile import handle as reconcile_step
from hub.service import Hub
from hub.signed_request import signed_request
from protocol.acks import Acks
from protocol.codec import unpack
from protocol.document import open_document
from protocol.errors import MalformedError, RemoteProtocolError, TooLargeError
from protocol.feed import MAX_NONCE_BYTES, PullRequest
from protocol.limits import PUSH_BODY_MAX_BYTES, PUSH_LIMITS, PUSH_MAX_FRAMES
from protocol.reconciliation import ReconcileRequest
from protocol.wire import sign_message
from replica.errors import Refused

# The caps are in protocol/limits.py (shared with the stations); these names stay for their importers.
MAX_PUSH_BYTES = PUSH_BODY_MAX_BYTES
MAX_FRAMES_PER_PUSH = PUSH_MAX_FRAMES
PULL_WINDOW_MS = 15 * 60 * 1000
SERVE_CACHE_KIB = 64 * 1024


@dataclass(frozen=True)
class HubConfig:
    folder: Path
    host: str = "127.0.0.1"
    port: int = 8700
    nightly: str = "02:00"
    allow_unsealed: bool = False  # test harnesses only: see Hub.allow_unsealed


HUB = web.AppKey("hub", Hub)
COMMITTER = web.AppKey("committer", Committer)
CONFIG = web.AppKey("config", HubConfig)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except RemoteProtocolError as exc:
        return _error(exc.status, exc.code, str(exc))
    except Refused as exc:
        return _error(400, exc.code, str(exc))
    except HttpProcessingError as exc:
        # A body that breaks off or is mis-encoded while a handler reads it: the sender's fault, not ours.
        return _error(400, "malformed", f"请求无法解析，未处理 (malformed HTTP request: {type(exc).__name__})")


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise TooLargeError(f"request body of {request.content_length} bytes exceeds the {limit}-byte limit")
    # StreamReader.read(n) returns what has arrived so far, not n bytes: read until the end of the body.
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    hub.store.conn.execute("SELECT 1").fetchone()
    return web.json_response({"ok": True, "hub_id": hub.hub_id})


async def push(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    if request.content_type not in ("application/vnd.sanji.frames+msgpack", "application/msgpack"):
        raise MalformedError(f"content type {request.content_type!r} is not accepted; send msgpack frames")
    frames = unpack(await _read_body(request, MAX_PUSH_BYTES), PUSH_LIMITS)
    if not isinstance(frames, list) or not frames or not all(isinstance(f, bytes) for f in frames):
        raise MalformedError("push body must be a non-empty array of batch frames")
    source = f"http:{request.remote or '?'}"
    committer = request.app[COMMITTER]
    # Each frame is a piece of the next group commit (hub/committer.py), in order; answered once durable.
    acks: list[FrameAck] = list(
        await asyncio.gather(
            *(
                committer.submit(functools.partial(ingest_frame, hub, frame, source=source, atomic=committer.atomic))
                for frame in frames
                if isinstance(frame, bytes)
            )
        )
    )
    authentic = [a for a in acks if a.batch]
    if not authentic:
        first = acks[0]
        return _error(first.status if first.status >= 400 else 403, "rejected", first.reason)
    station = authentic[0].origin
    doc = sign_message(
        Acks(tuple(a.ack() for a in acks)), signer=hub.hub_id, recipient=station, signing_key=hub.keys.sign
    )
    return web.Response(body=doc.frame, content_type="application/vnd.sanji.document")


def _pull_identity(request: web.Request, hub: Hub) -> tuple[str, PullRequest]:
    data = signed_request(request, "a pull")
    doc = open_document(data, kind=PullRequest.KIND, recipient=hub.hub_id, verify_key=hub.verify_key)
    body = PullRequest.from_wire(doc.body)
    if abs(body.at_ms - hub.clock()) > PULL_WINDOW_MS:
        raise Refused("pull request is stale or from a clock far off; check the station's clock", code="stale")
    return doc.signer, body


async def pull(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    station, body = _pull_identity(request, hub)
    asked = request.query.get("station")
    if asked and asked != station:
        return _error(403, "forbidden", f"station {station} may not read the feed of {asked}")
    after = body.after
    # What the station reports as its problem (a feed that stopped advancing, refused pages): the
    # dashboard shows it as the station's last error; '' clears it.
    request.app[COMMITTER].later(
        functools.partial(
            hub.store.seen,
            station,
            hub.clock(),
            backlog=body.pending,
            catalogue_version=body.catalogue_version,
            feed_ack=after,
            skew_ms=body.at_ms - hub.clock(),
            error=body.problem[:500] if body.problem is not None else None,
        )
    )
    seq, epoch = body.seq, body.epoch
    if seq is not None and epoch is not None and 0 <= seq < 2**62 and 0 < epoch < 2**62:
        request.app[COMMITTER].later(functools.partial(hub.store.note_horizon, station, epoch, seq, after))
    nonce = body.nonce  # answered in the page's signed header (freshness: a replay cannot answer it)
    page = feed_page(
        hub,
        station,
        after=after,
        catalogue_version=body.catalogue_version,
        nonce=nonce if 0 < len(nonce) <= MAX_NONCE_BYTES else b"",
    )
    return web.Response(body=page, content_type="application/vnd.sanji.document")


RECONCILE_CACHE = web.AppKey("reconcile_cache", TreeCache)


async def reconcile(request: web.Request) -> web.Response:
    """One step of a station's anti-entropy session (see hub/reconcile.py)."""
    hub = request.app[HUB]
    data = await _read_body(request, MAX_PUSH_BYTES)
    doc = open_document(data, kind=ReconcileRequest.KIND, recipient=hub.hub_id, verify_key=hub.verify_key)
    body = ReconcileRequest.from_wire(doc.body)
    if abs(body.at_ms - hub.clock()) > PULL_WINDOW_MS:
        raise Refused("reconcile request is stale or from a clock far off; check the station's clock", code="stale")
    answer = reconcile_step(hub, request.app[RECONCILE_CACHE], doc.signer, body)
    return web.Response(body=answer, content_type="application/vnd.sanji.document")


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = Hub.open(app[CONFIG].folder)
    hub.allow_unsealed = app[CONFIG].allow_unsealed
    app[HUB] = hub
    # A serving hub keeps its working set in SQLite's page cache (up to 64 MB, allocated as used) rather
    # than the default 2 MB: with hundreds of stations the index pages of every table are hot.
    hub.store.conn.execute(f"PRAGMA cache_size=-{SERVE_CACHE_KIB}")
    committer = Committer(hub.store.conn)
    committer.start()
    app[COMMITTER] = committer
    yield
    await committer.stop()
    hub.close()


Context = Callable[[web.Application], AsyncIterator[None]]


def create_app(config: HubConfig, *, extra_contexts: list[Context] | None = None) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_PUSH_BYTES + 1024)
    http_log.install()  # requests the HTTP parser refuses: one log line each, no traceback
    app[CONFIG] = config
    app.cleanup_ctx.append(_hub_ctx)
    for ctx in extra_contexts or []:
        app.cleanup_ctx.append(ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/sync/push", push)
    app.router.add_get("/v1/sync/pull", pull)
    add_enrolment_routes(app)  # enrolment by challenge, and the hub key history (hub/enrol_routes.py)
    add_blob_routes(app)  # photos and scans: resumable chunked uploads (hub/blobs.py)
    app[RECONCILE_CACHE] = TreeCache()
    app.router.add_post("/v1/reconcile", reconcile)
    add_dashboard_routes(app)  # the operator dashboard at / (hub/dashboard.py)
    add_metrics(app)  # GET /metrics, Prometheus text format (hub/metrics.py)
    return app
