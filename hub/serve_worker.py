"""One worker of `hub serve --workers N`: ``python -m hub.serve_worker FD SLOT OPTIONS_JSON``.

Started by the supervising parent (``hub/workers.py``) with the listening socket as file descriptor
FD. It runs the same app as a single `hub serve` (``hub.server.build_app``: the sync routes, the
dashboard, the nightly schedule), over its own connections to the hub folder; whatever it must agree
on with the other workers lives in the store or the folder, not in this process (docs/architecture.md,
"Several hub processes"). SIGTERM and SIGINT stop it as they stop `hub serve` (aiohttp's graceful
shutdown: requests under way finish, the group committer's last group commits).
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from aiohttp import web

from hub.nightly_worker import die_with_parent
from hub.server import LISTEN_BACKLOG, ServeOptions, build_app

log = logging.getLogger("sanji.hub")


def main(argv: list[str]) -> int:
    die_with_parent(os.getppid())  # a supervisor killed outright takes its workers with it
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    fd, slot, options = int(argv[0]), int(argv[1]), ServeOptions.from_json(argv[2])
    sock = socket.socket(fileno=fd)
    app = build_app(options)
    log.debug("区局工作进程 %d 开始服务", slot)
    web.run_app(app, sock=sock, print=None, access_log=None, backlog=LISTEN_BACKLOG)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
