"""Reading the hub's HTTP answers with a hard cap, so no answer can cost a station more memory than that.

A station used to read an answer whole before looking at its size: a pull answered with 2 GiB took
4.25 GB of memory before it was refused (issue 21). Now ``Content-Length`` is checked before a byte is
read, and an answer without one (or lying about it) is read in chunks and dropped at the cap
(``protocol/limits.py``: ``RESPONSE_MAX_BYTES`` for frames, ``ERROR_BODY_MAX_BYTES`` for JSON).
``aiohttp`` decompresses a ``Content-Encoding`` body as it streams, so the cap counts the bytes we
would have kept, whatever the wire size. The connection is closed, not drained: the rest is never read.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp

from protocol.limits import ERROR_BODY_MAX_BYTES, RESPONSE_MAX_BYTES, mib
from replica.errors import Refused, Unreachable

CHUNK_BYTES = 256 * 1024


class AnswerTooLarge(Refused):
    """The hub (or something on the path) answered with more than a station reads. Exit 2; nothing kept."""

    def __init__(self, what: str, size: int, cap: int, *, declared: bool) -> None:
        said = f"声明长度 {mib(size)}" if declared else f"读到 {mib(size)} 时仍未结束"
        super().__init__(
            f"{what}过大，已拒收：{said}，超过站点可接收的上限 {mib(cap)} "
            f"(answer over the {cap}-byte cap a station reads; not kept)。本站工作不受影响，下次同步会重试；"
            "若反复出现，请联系区局核查网络线路或代理是否被篡改",
            code="too_large",
        )
        self.size = size
        self.cap = cap


class NotAHub(Refused):
    """A 200 answer that is not one of the hub's document types: the address serves something else
    (a router's page, a web server, a captive portal). Said in those words, not as a decoding error."""

    def __init__(self, url: str, content_type: str) -> None:
        super().__init__(
            f"{url} 答话的不是 Sanji 区局（它返回的是 {content_type or '未标明类型的内容'}）：请核对区局地址，"
            "可用 sanji node set-hub 修改；本站数据未受影响，待传的变更仍在队列中",
            code="not_a_hub",
        )


# Every successful answer of the hub is one of these (hub/web: documents; enrolment and key history).
HUB_TYPES = frozenset({"application/vnd.sanji.document", "application/msgpack"})


async def read_body(
    resp: aiohttp.ClientResponse, *, what: str = "区局的应答", cap: int = RESPONSE_MAX_BYTES, hub_document: bool = True
) -> bytes:
    """The whole body, or :class:`AnswerTooLarge` having read at most ``cap`` bytes of it. A 200 answer
    expected to be a hub document (``hub_document``) of another type is :class:`NotAHub`, unread."""
    if hub_document and resp.status == 200 and resp.content_type not in HUB_TYPES:
        resp.close()
        raise NotAHub(f"{resp.url.scheme}://{resp.url.host}:{resp.url.port}", resp.content_type)
    declared = resp.content_length
    if declared is not None and declared > cap:
        resp.close()
        raise AnswerTooLarge(what, declared, cap, declared=True)
    body = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        if len(body) + len(chunk) > cap:
            resp.close()
            raise AnswerTooLarge(what, len(body) + len(chunk), cap, declared=False)
        body += chunk
    return bytes(body)


async def read_json(resp: aiohttp.ClientResponse, *, cap: int = ERROR_BODY_MAX_BYTES) -> object:
    """A small JSON answer (a refusal's reason, an upload's status), or None when it is not one.

    An oversize or unparsable body is not an error of its own here: the caller still has the status."""
    try:
        data = await read_body(resp, what="区局的说明", cap=cap, hub_document=False)
        return json.loads(data)
    except (AnswerTooLarge, ValueError):
        return None


def unreachable(url: str, exc: BaseException, then: str) -> Unreachable:
    """The hub could not be reached, in words staff act on: what happened, what to check, and what
    became of their work (``then``). Never a bare ``ClientConnectorError … ssl:default``."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        what = "等待区局应答超时"
    elif isinstance(exc, aiohttp.ClientSSLError):
        what = "与区局的加密连接失败"
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        what = "连接中途断开"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        what = "无法建立连接"
    else:
        what = "网络出错"
    return Unreachable(f"连不上区局 {url}（{what}）：请检查网络或区局地址；{then}")
