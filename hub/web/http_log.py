"""What the hub's log says about requests the HTTP parser itself refused.

aiohttp answers a request it cannot parse (a header over its field cap, a broken request line, bad
chunked encoding) with a 400 before any Sanji code runs, and logs it at ERROR with a full traceback.
Such requests come from outside and say nothing about the hub's health: a flood of them must neither
bury real errors among tracebacks nor make an operator think the hub crashed. So they become one
WARNING line naming the address and what was wrong, and real errors keep their tracebacks.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

SERVER_LOGGER = "aiohttp.server"  # where aiohttp's request handler logs (aiohttp.log.server_logger)


def what_was_wrong(exc: HttpProcessingError) -> str:
    """A short reason for the log, without echoing the sender's bytes."""
    if isinstance(exc, LineTooLong):
        return "请求头或请求行过长 (header or request line too long)"
    if isinstance(exc, BadHttpMethod):
        return "不是 HTTP 请求 (not HTTP)"
    return f"无法解析 (unparseable: {type(exc).__name__})"


class ParseErrorsOnOneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "拒收无法解析的 HTTP 请求，来自 %s：%s，已答复 400 (malformed HTTP request refused)"
            record.args = (remote, what_was_wrong(exc))
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def install() -> None:
    """Add the filter once, however many apps a process makes (tests make many)."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, ParseErrorsOnOneLine) for f in logger.filters):
        logger.addFilter(ParseErrorsOnOneLine())


__all__ = ["ParseErrorsOnOneLine", "install", "what_was_wrong"]
