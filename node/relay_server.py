"""The relay listener of a township's ``sanji node serve --relay-port P``: the relay routes only, on a
socket of their own, so the staff UI (loopback) is never reachable from the villages' side.

The routes have the hub's shapes, so a village's client speaks to the relay as it would to the hub:

- ``POST /v1/sync/push``: a village's batch frames (msgpack array, as to the hub). They are queued
  for the township's next round with the hub, as far as the quota has room, in order; the answer
  hands over the hub's signed acks that were waiting for this village:
  ``{"relay": township, "queued": n, "acks": [document, ...]}``, where the first ``n`` frames were
  taken. When ``n`` is short of the push, ``"refused": {"error": "relay_full", "message": ...}``
  says why: the village keeps the rest and offers them again (node/relay_client.py).
- ``GET /v1/sync/pull``: the village's signed pull request in ``X-Sanji-Request`` is kept for the
  hub; the answer hands over the feed pages the hub wrote for the village and any acks still waiting
  for it (a village with nothing to push collects its receipts here): ``{"relay", "pages", "acks"}``.
- ``GET /v1/keys``: the hub's key history as the hub last gave it to the township's forwarding (the
  hub's own answer, bytes as they came; 404 before there is one). Public, and signed by the hub's root:
  a village cut off from the hub follows a key rotation with it, or could verify nothing after one.
- ``GET /healthz``: ``{"ok": true, "relay": township}``.

The relay signs nothing and opens nothing: the village verifies every acks document and page with the
hub key it pinned at enrolment, exactly as from the hub.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from pathlib import Path

from aiohttp import web

from node.relay_queue import RelayQueue, kept_keys, now_ms
from protocol.codec import pack, unpack
from protocol.errors import RemoteProtocolError
from protocol.limits import PUSH_BODY_MAX_BYTES, PUSH_LIMITS
from protocol.wire import REQUEST_HEADER
from replica.errors import Refused

CONTENT_TYPE = "application/vnd.sanji.relay+msgpack"
QUEUE: web.AppKey[RelayQueue] = web.AppKey("relay_queue", RelayQueue)
FOLDER: web.AppKey[Path] = web.AppKey("relay_folder", Path)
KEYS_TYPE = "application/msgpack"  # as the hub answers /v1/keys


def _refusal(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"error": code, "message": reason, "reason": reason}, status=status)


async def _body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > PUSH_BODY_MAX_BYTES:
        raise Refused(f"请求过大，乡镇未收下 (over {PUSH_BODY_MAX_BYTES} bytes)", code="too_large")
    data = await request.content.read(PUSH_BODY_MAX_BYTES + 1)
    while len(data) <= PUSH_BODY_MAX_BYTES and (more := await request.content.read(PUSH_BODY_MAX_BYTES + 1)):
        data += more
    if len(data) > PUSH_BODY_MAX_BYTES:
        raise Refused(f"请求过大，乡镇未收下 (over {PUSH_BODY_MAX_BYTES} bytes)", code="too_large")
    return data


async def push(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    try:
        frames = unpack(await _body(request), PUSH_LIMITS)
        if not isinstance(frames, list) or not frames or not all(isinstance(f, bytes) for f in frames):
            raise Refused("上传内容须是批次数组 (push body must be a non-empty array of frames)", code="malformed")
        # SQLite work off the event loop: the township's own UI and sync share this process.
        offered = await asyncio.to_thread(queue.offer_up, [bytes(f) for f in frames], now_ms())
    except RemoteProtocolError as exc:
        return _refusal(400, "malformed", f"上传内容无法读取，乡镇未收下 ({exc})")
    except Refused as exc:
        return _refusal(413 if exc.code in ("too_large", "relay_full") else 400, exc.code or "refused", str(exc))
    answer: dict[str, object] = {
        "relay": queue.township,
        "village": offered.village,
        "queued": offered.taken,
        "acks": offered.answers,
    }
    if offered.refusal is not None:  # a 200 all the same: the acks handed over must reach the village
        answer["refused"] = {"error": offered.refusal.code, "message": str(offered.refusal)}
    body = pack(answer)
    return web.Response(body=body, content_type=CONTENT_TYPE)


async def pull(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    try:
        signed = base64.b64decode(request.headers.get(REQUEST_HEADER, ""), validate=True)
    except (binascii.Error, ValueError):
        signed = b""
    if not signed:
        return _refusal(400, "malformed", f"缺少签名的下载请求（{REQUEST_HEADER}），乡镇未收下")
    try:
        got = await asyncio.to_thread(queue.offer_pull, signed, now_ms())
    except Refused as exc:
        return _refusal(413 if exc.code == "relay_full" else 400, exc.code or "refused", str(exc))
    body = pack({"relay": queue.township, "village": got.village, "pages": got.pages, "acks": got.acks})
    return web.Response(body=body, content_type=CONTENT_TYPE)


async def keys(request: web.Request) -> web.Response:
    bundle = await asyncio.to_thread(kept_keys, request.app[FOLDER])
    if bundle is None:
        return _refusal(404, "no_keys", "乡镇转发站尚未转来区局的密钥记录 (the relay holds no key history yet)")
    return web.Response(body=bundle, content_type=KEYS_TYPE)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "relay": request.app[QUEUE].township})


def create_relay_app(folder: Path, township: str) -> web.Application:
    app = web.Application(client_max_size=PUSH_BODY_MAX_BYTES + 1024)

    async def ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app[QUEUE] = RelayQueue(folder, township)
        yield
        app[QUEUE].close()

    app.cleanup_ctx.append(ctx)
    app[FOLDER] = Path(folder)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/sync/push", push)
    app.router.add_get("/v1/sync/pull", pull)
    app.router.add_get("/v1/keys", keys)
    return app
