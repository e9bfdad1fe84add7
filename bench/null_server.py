"""An HTTP server that does no work: the floor under ``bench stations``.

``python -m bench.null_server PORT`` answers ``POST /v1/sync/push`` by reading the body and sending
back 200 bytes, and ``GET /v1/sync/pull`` with 1,000 bytes, over the same aiohttp stack as the hub
(its own process, as the hub is). ``bench limits`` drives it with as many concurrent clients as
``bench stations`` uses, so the latency it measures is what HTTP alone costs on this machine.
"""

from __future__ import annotations

import sys

from aiohttp import web

PUSH_ANSWER = b"a" * 200
PULL_ANSWER = b"f" * 1000


async def push(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=PUSH_ANSWER, content_type="application/octet-stream")


async def pull(request: web.Request) -> web.Response:
    return web.Response(body=PULL_ANSWER, content_type="application/octet-stream")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def main(argv: list[str]) -> int:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/sync/push", push)
    app.router.add_get("/v1/sync/pull", pull)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(argv[0]), print=None, access_log=None, backlog=2048)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
