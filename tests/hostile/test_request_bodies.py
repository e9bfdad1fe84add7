"""Request bodies a real hub must refuse for their size, framing or encoding, whatever they carry.

Msgpack that lies about its lengths, nests too deep or uses ext types, as the body of every route that
reads one; push and enrolment bodies over the limit (declared, streamed, or too many frames); a
`Content-Length` far larger than the body and malformed `Content-Length` / `Transfer-Encoding` headers
sent on a raw connection; gzip bombs under `Content-Encoding`; a genuine push under a wrong content
type. Each is a 4xx (413 for oversize bodies), nothing but the record of refusals changes, the hub keeps
answering `/healthz`, and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import AsyncIterator
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.web.sync import MAX_FRAMES_PER_PUSH, MAX_PUSH_BYTES
from protocol.codec import pack
from protocol.frame import MAGIC

from .harness import (
    FRAMES,
    TALLY,
    Sender,
    Served,
    counts,
    hostile,
    rss_peak_bytes,
    snapshot_unchanged,
)
from .test_decoder import MUST_REFUSE

pytestmark = pytest.mark.usefixtures("_hub_still_serves")


# -- sizes, lies and bombs ------------------------------------------------------------------------------


@hostile(300)
@given(
    body=MUST_REFUSE,
    route=st.sampled_from(["/v1/sync/push", "/v1/enroll", "/v1/reconcile"]),
    ctype=st.sampled_from([FRAMES, "application/msgpack", "application/vnd.sanji.document"]),
)
def test_msgpack_that_lies_is_refused_on_every_body_route(served: Served, body: bytes, route: str, ctype: str) -> None:
    TALLY.add("http: lying lengths, deep nesting, ext types, bad keys as request bodies")
    before = counts(served.hub)
    for data in (body, pack([body]), MAGIC + body):
        reply = served.request("POST", route, data=data, headers={"Content-Type": ctype})
        assert 400 <= reply.status < 500, f"{route}: {reply.status} {reply.body[:200]!r}"
        assert reply.json().get("error")
    assert not snapshot_unchanged(before, counts(served.hub), allow=("rejected",))
    assert served.healthy()


def test_oversize_push_bodies_are_refused_with_413(served: Served) -> None:
    TALLY.add("http: oversize bodies (declared, streamed, too many frames)", 4)
    before = counts(served.hub)
    big = served.push([b"\x00" * (MAX_PUSH_BYTES // 2), b"\x00" * (MAX_PUSH_BYTES // 2)])
    assert big.status == 413, big.body[:200]

    async def stream() -> AsyncIterator[bytes]:
        chunk = b"\x00" * (1024 * 1024)
        for _ in range(MAX_PUSH_BYTES // len(chunk) + 2):
            yield chunk

    async def chunked() -> int:
        async with served.client.post("/v1/sync/push", data=stream(), headers={"Content-Type": FRAMES}) as resp:
            await resp.read()
            return resp.status

    try:
        status = served.loop.run_until_complete(chunked())
    except Exception as exc:  # the hub may close the connection while the client is still sending
        status = 413 if "reset" in str(exc).lower() or "closed" in str(exc).lower() else -1
        assert status == 413, f"streamed oversize push: {type(exc).__name__}: {exc}"
    assert status == 413
    many = served.push([b"x"] * (MAX_FRAMES_PER_PUSH + 1))
    assert many.status == 413, many.body[:200]
    enrol = served.request("POST", "/v1/enroll", data=b"\x00" * 5000, headers={"Content-Type": "application/msgpack"})
    assert enrol.status == 413, enrol.body[:200]
    assert not snapshot_unchanged(before, counts(served.hub))
    assert served.healthy()


def raw_http(served: Served, request: bytes, *, read_timeout: float = 10.0) -> bytes:
    """Send bytes on a fresh connection to the test server and return what comes back."""
    server = served.client.server

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(request)
            await writer.drain()
            return await asyncio.wait_for(reader.read(65536), timeout=read_timeout)
        finally:
            writer.close()

    return served.loop.run_until_complete(go())


def status_of(raw: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    assert match is not None, f"not an HTTP answer: {raw[:200]!r}"
    return int(match.group(1))


@pytest.mark.parametrize("length", [MAX_PUSH_BYTES + 1, 10**12, 2**63 - 1])
def test_a_content_length_that_lies_is_refused_without_reading(served: Served, length: int) -> None:
    TALLY.add("http: Content-Length far larger than the body")
    before = counts(served.hub)
    raw = raw_http(
        served,
        (
            f"POST /v1/sync/push HTTP/1.1\r\nHost: hub\r\nContent-Type: {FRAMES}\r\nContent-Length: {length}\r\n\r\n"
        ).encode()
        + b"\x91\xc4\x01x",
    )
    assert 400 <= status_of(raw) < 500, raw[:300]
    assert not snapshot_unchanged(before, counts(served.hub))
    assert served.healthy()


@pytest.mark.parametrize(
    "header",
    [
        "Content-Length: -1",
        "Content-Length: abc",
        "Content-Length: 1\r\nContent-Length: 2",
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
        "Transfer-Encoding: gzip, chunked",
    ],
)
def test_malformed_framing_headers_are_refused(served: Served, header: str) -> None:
    TALLY.add("http: malformed Content-Length / Transfer-Encoding")
    before = counts(served.hub)
    raw = raw_http(
        served,
        (f"POST /v1/sync/push HTTP/1.1\r\nHost: hub\r\nContent-Type: {FRAMES}\r\n{header}\r\n\r\n0\r\n\r\n").encode(),
    )
    assert raw == b"" or 400 <= status_of(raw) < 500, raw[:300]
    assert not snapshot_unchanged(before, counts(served.hub))
    assert served.healthy()


@cache
def gzip_bomb() -> bytes:
    """64 MiB of zeros (twice the push limit) in about 64 KiB, made a MiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    zeros = bytes(2**20)
    return b"".join([*(packer.compress(zeros) for _ in range(64)), packer.flush()])


@pytest.mark.parametrize("route", ["/v1/sync/push", "/v1/enroll", "/v1/reconcile", "/login"])
def test_a_gzip_bomb_request_body_is_refused_within_bounded_memory(served: Served, route: str) -> None:
    TALLY.add("http: Content-Encoding: gzip bomb")
    before = counts(served.hub)
    reply = served.request(
        "POST", route, data=gzip_bomb(), headers={"Content-Type": FRAMES, "Content-Encoding": "gzip"}
    )
    assert 400 <= reply.status < 500, f"{route}: {reply.status} {reply.body[:200]!r}"
    assert not snapshot_unchanged(before, counts(served.hub), allow=("rejected",))
    assert rss_peak_bytes() < 1024 * 2**20, f"peak RSS {rss_peak_bytes() / 2**20:.0f} MiB after a gzip bomb"
    assert served.healthy()


def test_wrong_content_types_carry_nothing_in(served: Served, senders: dict[str, Sender]) -> None:
    village = senders["village"]
    seq, _ = served.position(village)
    frame = served.batch(
        village,
        [
            served.wire(
                village,
                seq,
                "application",
                village.fresh_id(),
                {"station": village.code, "number": f"{village.code}-ct-{seq}"},
            )
        ],
    )
    before = counts(served.hub)
    for ctype in (
        "text/plain",
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/octet-stream",
        "image/png",
    ):
        TALLY.add("http: a genuine push under a wrong content type")
        reply = served.push([frame], content_type=ctype)
        assert reply.status == 400 and "content type" in reply.json()["message"], reply.body[:200]
    reply = served.request("POST", "/v1/sync/push", data=pack([frame]), no_content_type=True)
    assert reply.status == 400
    assert not snapshot_unchanged(before, counts(served.hub))
    assert served.position(village)[0] == seq, "nothing was applied"
