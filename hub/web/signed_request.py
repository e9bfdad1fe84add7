"""The ``X-Sanji-Request`` header that authenticates a pull or a blob request, read with a cap.

The header is read before anything about the request is authenticated, so whoever sends it chooses
its size. A genuine one is about 500 characters; anything over ``REQUEST_HEADER_MAX_CHARS`` is
refused with a 400 and a reason before it is decoded. Above aiohttp's own header-field cap the HTTP
parser refuses it first (``hub/http_log.py`` keeps that refusal to one line in the log).
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from protocol.errors import MalformedError, TooLargeError
from protocol.limits import REQUEST_HEADER_MAX_CHARS
from protocol.wire import REQUEST_HEADER
from replica.errors import Refused


def signed_request(request: web.Request, what: str) -> bytes:
    """The signed document the header carries, still to be opened and verified by the caller.
    ``what`` names the request in the refusal ("a pull", "a blob request")."""
    raw = request.headers.get(REQUEST_HEADER, "")
    if not raw:
        raise Refused(
            f"请求没有签名（缺少 {REQUEST_HEADER} 请求头），区局不予处理：请用 sanji 站点程序同步"
            f" ({what} must carry a signed {REQUEST_HEADER} header)",
            code="unauthenticated",
        )
    if len(raw) > REQUEST_HEADER_MAX_CHARS:
        raise TooLargeError(
            f"{REQUEST_HEADER} 签名请求头过长（{len(raw)} 字符，上限 {REQUEST_HEADER_MAX_CHARS}），未处理 "
            "(signed request header too long)；请用正式版本的 Sanji 站点软件重新同步",
            status=400,
        )
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"{REQUEST_HEADER} is not base64") from exc


__all__ = ["REQUEST_HEADER", "signed_request"]
