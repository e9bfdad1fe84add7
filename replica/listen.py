"""The listening socket of `hub serve` and `node serve`, bound before anything says "serving".

Binding first (and handing the socket to aiohttp) means a port already in use is one clear refusal,
exit 2, instead of a "serving on …" line followed by an OSError traceback; and there is no window in
which another process could take the port between a check and the real bind.
"""

from __future__ import annotations

import errno
import socket

from replica.errors import Refused


def bind(host: str, port: int, *, what: str, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on (host, port), or :class:`Refused` naming what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise Refused(
                f"端口 {port} 已被占用：可能已有一个{what}在运行。请先停止它，或用 --port 换一个端口。",
                code="port_in_use",
            ) from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise Refused(f"没有权限监听端口 {port}：请用 1024 以上的端口（--port）。", code="port_forbidden") from exc
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
            raise Refused(f"本机没有地址 {host}：请检查 --host。", code="bad_host") from exc
        raise
