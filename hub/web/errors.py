"""How the hub's HTTP routes refuse: one JSON shape, ``{"error": code, "message": reason}``.

One middleware turns the protocol's typed errors (and a ``Refused``) into 4xx answers with a reason, so
a malformed or forged request changes nothing and the hub keeps serving everyone else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from protocol.errors import RemoteProtocolError
from replica.errors import Refused


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except RemoteProtocolError as exc:
        return error(exc.status, exc.code, str(exc))
    except Refused as exc:
        return error(400, exc.code, str(exc))
    except HttpProcessingError as exc:
        # A body that breaks off or is mis-encoded while a handler reads it: the sender's fault, not ours.
        return error(400, "malformed", f"请求无法解析，未处理 (malformed HTTP request: {type(exc).__name__})")
