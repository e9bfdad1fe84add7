"""The sync routes: a station pushes batches, pulls its feed, and reconciles its replica with the hub's.

Handlers follow four steps: read bytes (size-capped), decode and verify, call the library, reply. The
protocol's typed errors become 4xx answers in ``hub/web/errors.py``, so a malformed or forged request
changes nothing and the hub keeps serving everyone else.

- ``GET /healthz``: the hub answers and its database is readable.
- ``POST /v1/sync/push``: frames of signed batches, each a piece of the next group commit; the answer is
  a signed ``acks`` document.
- ``GET /v1/sync/pull``: the station's next feed page, for a signed pull request in ``X-Sanji-Request``.
- ``POST /v1/reconcile``: one step of a station's anti-entropy session (``hub/reconcile.py``).
"""

from __future__ import annotations

import asyncio
import functools
import os

from aiohttp import web

from hub import relay_address, relay_proof, relay_reports
from hub.appkeys import COMMITTER, HUB, RECONCILE_CACHE, WRITER
from hub.feed import chain_at, feed_page
from hub.ingest import FrameAck, ingest_frame
from hub.reconcile import handle as reconcile_step
from hub.service import Hub
from hub.usb_files import note_status
from hub.web.errors import error
from hub.web.signed_request import signed_request
from protocol.acks import Acks
from protocol.codec import unpack
from protocol.document import open_document
from protocol.errors import MalformedError, TooLargeError
from protocol.feed import MAX_NONCE_BYTES, PullRequest
from protocol.limits import PUSH_BODY_MAX_BYTES, PUSH_LIMITS, PUSH_MAX_FRAMES
from protocol.reconciliation import ReconcileRequest
from protocol.relay_label import PULL_ROUTE, PUSH_ROUTE
from protocol.wire import sign_message
from replica.errors import Refused

# The caps are in protocol/limits.py (shared with the stations); these names stay for their importers.
MAX_PUSH_BYTES = PUSH_BODY_MAX_BYTES
MAX_FRAMES_PER_PUSH = PUSH_MAX_FRAMES
PULL_WINDOW_MS = 15 * 60 * 1000


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
    hub.store.ping()
    # "worker": which serving process answered (with `hub serve --workers N`, one of N).
    return web.json_response({"ok": True, "hub_id": hub.hub_id, "worker": os.getpid()})


async def push(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    if request.content_type not in ("application/vnd.sanji.frames+msgpack", "application/msgpack"):
        raise MalformedError(f"content type {request.content_type!r} is not accepted; send msgpack frames")
    data = await _read_body(request, MAX_PUSH_BYTES)
    frames = unpack(data, PUSH_LIMITS)
    if not isinstance(frames, list) or not frames or not all(isinstance(f, bytes) for f in frames):
        raise MalformedError("push body must be a non-empty array of batch frames")
    source = f"http:{request.remote or '?'}"
    committer, writer = request.app[COMMITTER], request.app[WRITER]
    # The path a batch took, when the township relaying it proves it (node/relay_forward.py signs
    # it): that name is what a `relay_seen` alert blames. The batches verify whichever way they came.
    label = await relay_proof.read(request, hub, PUSH_ROUTE, data)
    if label.relay:
        source = f"relay:{label.relay}@{request.remote or '?'}"
    elif label.claimed:
        committer.later(
            functools.partial(relay_proof.note_unproven, writer.store, request.remote or "?", label, hub.clock())
        )
    # Each frame is a piece of the next group commit (hub/committer.py), in order, taken in by the
    # committer's thread through its own hub; answered once durable.
    acks: list[FrameAck] = list(
        await asyncio.gather(
            *(
                committer.submit(functools.partial(ingest_frame, writer, frame, source=source, atomic=committer.atomic))
                for frame in frames
                if isinstance(frame, bytes)
            )
        )
    )
    authentic = [a for a in acks if a.batch]
    if not authentic:
        first = acks[0]
        return error(first.status if first.status >= 400 else 403, "rejected", first.reason)
    station = authentic[0].origin
    doc = sign_message(
        Acks(tuple(a.ack() for a in acks)), signer=hub.hub_id, recipient=station, signing_key=hub.keys.sign
    )
    return web.Response(body=doc.frame, content_type="application/vnd.sanji.document")


def _pull_identity(request: web.Request, hub: Hub, data: bytes, relay: str) -> tuple[str, PullRequest, bool]:
    """(station, request, whether it is a status carried by hand through a township's relay): ``relay``
    is the township proven to have forwarded it (hub/relay_proof.py), '' for none."""
    doc = open_document(data, kind=PullRequest.KIND, recipient=hub.hub_id, verify_key=hub.verify_key)
    body = PullRequest.from_wire(doc.body)
    if abs(body.at_ms - hub.clock()) > PULL_WINDOW_MS:
        if not body.nonce and body.at_ms < hub.clock() and relay:
            # A village's stick status, read at its township and carried on (node/relay_cargo.py): no
            # nonce, so its page answers no online pull; it is answered as `hub export` would be, from
            # its cursor (the page is sealed to the village and verifies only there), and what it says
            # is taken only when newer than any status carried before. Else a USB-only village's
            # decisions could never come back through its township.
            return doc.signer, body, True
        raise Refused(
            "下载请求的时间与区局相差太多，区局不予处理：请校准本站电脑的日期和时间后重试"
            " (pull request is stale or from a clock far off)",
            code="stale",
        )
    return doc.signer, body, False


async def pull(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    data = signed_request(request, "a pull")
    label = await relay_proof.read(request, hub, PULL_ROUTE, data)  # forwarded by the village's township?
    writer = request.app[WRITER]  # bookkeeping runs in the committer's thread, through its hub
    if label.claimed:
        request.app[COMMITTER].later(
            functools.partial(relay_proof.note_unproven, writer.store, request.remote or "?", label, hub.clock())
        )
    station, body, carried = _pull_identity(request, hub, data, label.relay)
    asked = request.query.get("station")
    if asked and asked != station:
        return error(403, "forbidden", f"station {station} may not read the feed of {asked}")
    relay = label.relay
    if carried:
        request.app[COMMITTER].later(functools.partial(note_status, writer.store, station, body, hub.clock()))
    else:
        _note_pull(request, writer, station, body, relay)
    nonce = body.nonce  # answered in the page's signed header (freshness: a replay cannot answer it)
    page = feed_page(
        hub,
        station,
        after=body.after,
        catalogue_version=body.catalogue_version,
        nonce=nonce if 0 < len(nonce) <= MAX_NONCE_BYTES else b"",
        staff_version=body.staff_version,  # the station's accounts changed since (hub/staff.py)
        chain=chain_at(hub, station, body.epoch),  # lets a village prove a batch skipped
        report_asked=bool(body.relay),  # the page echoes what it recorded (hub/relay_reports.py)
    )
    return web.Response(body=page, content_type="application/vnd.sanji.document")


def _note_pull(request: web.Request, writer: Hub, station: str, body: PullRequest, relay: str) -> None:
    """The bookkeeping of an online pull, queued: what the station told us, and how it reached us."""
    hub = request.app[HUB]
    after = body.after
    # What the station reports as its problem (a feed that stopped advancing, refused pages): the
    # dashboard shows it as the station's last error; '' clears it.
    request.app[COMMITTER].later(
        functools.partial(
            writer.store.seen,
            station,
            hub.clock(),
            backlog=body.pending,
            catalogue_version=body.catalogue_version,
            feed_ack=after,
            skew_ms=body.at_ms - hub.clock(),
            error=body.problem[:500] if body.problem is not None else None,
            via=f"relay:{relay}" if relay else "network",
        )
    )
    if body.relay:  # the village caught its township relay misbehaving (hub/relay_reports.py)
        request.app[COMMITTER].later(
            functools.partial(
                relay_reports.record,
                writer.store,
                station,
                body.relay,
                body.relay_problem,
                body.relay_at_ms,
                hub.clock(),
            )
        )
    if body.relay_url is not None:  # a township's word for where its villages reach its relay, '' for nowhere
        request.app[COMMITTER].later(
            functools.partial(relay_address.learn, writer.store, station, body.relay_url, hub.clock())
        )
    seq, epoch = body.seq, body.epoch
    if seq is not None and epoch is not None and 0 <= seq < 2**62 and 0 < epoch < 2**62:
        request.app[COMMITTER].later(functools.partial(writer.store.note_horizon, station, epoch, seq, after))


async def reconcile(request: web.Request) -> web.Response:
    """One step of a station's anti-entropy session (see hub/reconcile.py)."""
    hub = request.app[HUB]
    data = await _read_body(request, MAX_PUSH_BYTES)
    doc = open_document(data, kind=ReconcileRequest.KIND, recipient=hub.hub_id, verify_key=hub.verify_key)
    body = ReconcileRequest.from_wire(doc.body)
    if abs(body.at_ms - hub.clock()) > PULL_WINDOW_MS:
        raise Refused(
            "对账请求的时间与区局相差太多，区局不予处理：请校准本站电脑的日期和时间后重试"
            " (reconcile request is stale or from a clock far off)",
            code="stale",
        )
    answer = reconcile_step(hub, request.app[RECONCILE_CACHE], doc.signer, body)
    return web.Response(body=answer, content_type="application/vnd.sanji.document")


def add_sync_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/sync/push", push)
    app.router.add_get("/v1/sync/pull", pull)
    app.router.add_post("/v1/reconcile", reconcile)
