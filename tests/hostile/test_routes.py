"""Every HTTP route of a real hub, fed what an attacker or a broken station would send.

Random bytes, msgpack and JSON garbage, wrong content types, SQL in path and query parameters, forged
and damaged frames in push envelopes, hostile `X-Sanji-Request` headers, oversize and lying bodies,
compressed bombs. Each answer is a 4xx with a reason on the sync API (never a 5xx anywhere), the hub
keeps answering `/healthz`, nothing but the record of refusals changes, every refused frame is
counted and explained in `hub.operations.status`, and memory stays bounded.

The routes are read from the app's router, so routes added later (dashboard, metrics, blobs) are
covered as they appear.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import zlib
from collections.abc import AsyncIterator, Iterator
from functools import cache
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub import enrollment
from hub.app import MAX_FRAMES_PER_PUSH, MAX_PUSH_BYTES
from protocol.codec import pack
from protocol.frame import MAGIC
from protocol.keys import public_bytes, sealing_key_from_seed, signing_key_from_seed

from .harness import (
    FRAMES,
    SQL_STRINGS,
    TALLY,
    TOWNSHIP,
    Sender,
    Served,
    counts,
    forge_frame,
    hostile,
    rss_peak_bytes,
    snapshot_unchanged,
)
from .test_decoder import MUST_REFUSE

VILLAGE = f"{TOWNSHIP}-01"
REVOKED = f"{TOWNSHIP}-09"
API_PREFIX = "/v1/"


@pytest.fixture(scope="module")
def senders(served: Served) -> dict[str, Sender]:
    township = served.enrol(TOWNSHIP, "township", seed=1)
    village = served.enrol(VILLAGE, "village", TOWNSHIP, seed=2)
    revoked = served.enrol(REVOKED, "village", TOWNSHIP, seed=3)
    with served.hub.store.transaction():
        served.hub.store.revoke(REVOKED)
    return {"township": township, "village": village, "revoked": revoked}


# -- what the router serves ---------------------------------------------------------------------------

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def route_table(served: Served) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, HEAD included."""
    app = served.client.server.app
    assert app is not None
    out = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        info = resource.get_info()
        template = str(info.get("formatter") or info.get("path") or info.get("prefix") or resource.canonical)
        if "prefix" in info:
            template = template.rstrip("/") + "/{file}"
        out.append((route.method, template))
    return sorted(set(out))


HOSTILE_SEGMENTS = st.one_of(
    st.sampled_from(SQL_STRINGS),
    st.sampled_from(["..", "../../etc/passwd", "%2e%2e%2f", "0" * 64, "f" * 64, "-1", "99999999999999999999", " ",
                     "\u202e", "<script>alert(1)</script>", "{sha256}", "360802-T01-01"]),
    st.text(min_size=1, max_size=80),
)

CONTENT_TYPES = st.sampled_from([
    FRAMES, "application/msgpack", "application/json", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz", "application/octet-stream", "text/html; charset=utf-8",
    f"{FRAMES}; charset=binary", "application/vnd.sanji.frames+msgpack+gzip", "image/png", "*/*", None,
])

_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=30),
                    st.binary(max_size=30), st.floats(allow_nan=False, allow_infinity=False))
MSGPACK_VALUES = st.recursive(_SCALAR, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                              st.dictionaries(st.text(max_size=10), kids, max_size=4)),
                              max_leaves=10)

BODIES = st.one_of(
    st.binary(max_size=2048),
    MSGPACK_VALUES.map(pack),
    st.lists(st.binary(max_size=300), min_size=1, max_size=4).map(pack),  # a push envelope of junk frames
    st.lists(st.binary(max_size=300).map(lambda b: MAGIC + b), min_size=1, max_size=4).map(pack),
    st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=40), st.sampled_from(SQL_STRINGS)),
                    max_size=5).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(st.sampled_from(["user", "password", "csrf", "next", "note", "station", "token"]),
                    st.one_of(st.text(max_size=40), st.sampled_from(SQL_STRINGS)), max_size=5)
    .map(lambda d: "&".join(f"{quote(k)}={quote(v)}" for k, v in d.items()).encode()),
    st.just(b""),
)

HEADER_VALUES = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=300),
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=200).map(lambda b: base64.b64encode(MAGIC + b).decode()),
)


def fill(template: str, segments: list[str]) -> str:
    it = iter(segments)
    return _PARAM.sub(lambda m: quote(next(it, "x"), safe=""), template)


def known_bug(method: str, template: str, content_type: str | None, body: bytes | None) -> bool:
    """Combinations that hit a bug pinned by its own strict xfail test; none are open now."""
    return False


def expectations(method: str, template: str, status: int) -> str | None:
    """None when `status` is an acceptable answer to garbage on this route, else why not."""
    if status >= 500:
        return f"{method} {template} answered {status}"
    if template.startswith(API_PREFIX) and not 400 <= status < 500:
        return f"{method} {template} answered {status} to garbage; the sync API must refuse it with a 4xx"
    return None


# -- every route, garbage in ----------------------------------------------------------------------------


@hostile(1000)
@given(data=st.data())
def test_every_route_refuses_garbage_without_a_5xx(served: Served, senders: dict[str, Sender],
                                                   data: st.DataObject) -> None:
    method, template = data.draw(st.sampled_from(route_table(served)), label="route")
    segments = data.draw(st.lists(HOSTILE_SEGMENTS, min_size=3, max_size=3), label="segments")
    path = fill(template, segments)
    body = data.draw(BODIES, label="body") if method not in ("GET", "HEAD") or data.draw(st.booleans()) else None
    content_type = data.draw(CONTENT_TYPES, label="content type")
    assume(not known_bug(method, template, content_type, body))
    TALLY.add("http: every route x random bodies, content types, headers, path/query params")
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if data.draw(st.booleans(), label="X-Sanji-Request"):
        headers["X-Sanji-Request"] = data.draw(HEADER_VALUES)
    if data.draw(st.booleans(), label="cookie"):
        headers["Cookie"] = f"sanji_session={data.draw(HEADER_VALUES)}; sanji_login={data.draw(HEADER_VALUES)}"
    params = data.draw(st.dictionaries(st.sampled_from(["station", "after", "status", "q", "page", "next"]),
                                       HOSTILE_SEGMENTS, max_size=3), label="query")
    before = counts(served.hub)
    reply = served.request(method, path, data=body, headers=headers, params=params,
                           no_content_type=content_type is None)
    problem = expectations(method, template, reply.status)
    assert problem is None, f"{problem}: {reply.body[:300]!r}"
    if template.startswith(API_PREFIX) and method != "HEAD":
        assert reply.body, "a refusal must say why"
    moved = snapshot_unchanged(before, counts(served.hub), allow=("rejected",))
    assert not moved, f"{method} {path} changed the hub: {moved}"
    assert served.healthy()


# Regression: malformed forms once made the dashboard answer 500.
@pytest.mark.parametrize("content_type,body", [
    ("multipart/form-data; boundary=xyz", b""),
    ("multipart/form-data; boundary=xyz", b"user=a&password=b"),
    ("multipart/form-data", b""),
    ("application/x-www-form-urlencoded", b"\x80"),
    ("application/x-www-form-urlencoded", b"user=\xff\xfe&password=x"),
])
def test_a_malformed_multipart_login_form_is_a_4xx(served: Served, content_type: str, body: bytes) -> None:
    TALLY.add("http: malformed multipart body on POST /login")
    reply = served.request("POST", "/login", data=body, headers={"Content-Type": content_type})
    assert served.healthy()
    assert 400 <= reply.status < 500, f"POST /login with {content_type!r}: {reply.status} {reply.body[:120]!r}"


# Regression: malformed forms once made the dashboard answer 500.
def test_a_signed_in_operators_malformed_form_is_a_4xx(served: Served) -> None:
    TALLY.add("http: malformed multipart body on a signed-in operator's POST")
    from hub.passwords import hash_password

    with served.hub.store.transaction():
        served.hub.store.add_operator("hostile-op", hash_password("correct horse battery"), served.hub.clock())

    async def go() -> int:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(f"{served.url}/login") as resp:
                await resp.read()
            csrf = next((c.value for c in jar if c.key == "sanji_login"), "")
            form = {"user": "hostile-op", "password": "correct horse battery", "csrf": csrf, "next": "/"}
            async with http.post(f"{served.url}/login", data=form, allow_redirects=False) as resp:
                await resp.read()
            if not any(c.key == "sanji_session" for c in jar):
                pytest.skip("could not sign in to the dashboard (its login flow changed)")
            async with http.post(f"{served.url}/stations/enrol", data=b"",
                                 headers={"Content-Type": "multipart/form-data; boundary=xyz"}) as resp:
                await resp.read()
                return resp.status

    status = served.loop.run_until_complete(go())
    assert served.healthy()
    assert 400 <= status < 500, f"signed-in POST /stations/enrol with a malformed multipart body: {status}"


# -- push envelopes full of refused frames -------------------------------------------------------------

FOREIGN_KEY = signing_key_from_seed(bytes([9]) * 32)


_GENUINE: dict[tuple[str, int], bytes] = {}


def genuine(served: Served, sender: Sender, n: int) -> bytes:
    """A genuine, well-formed batch from `sender` at seq 10**6 + n (far past its cursor: never applied)."""
    if (sender.code, n) not in _GENUINE:
        seq = 10**6 + n
        change = served.wire(sender, seq, "application", f"never-{n}", {"note": "x"})
        _GENUINE[(sender.code, n)] = served.batch(sender, [change], first_seq=seq)
    return _GENUINE[(sender.code, n)]


@st.composite
def refused_frame(draw: st.DrawFn, served: Served, senders: dict[str, Sender]) -> tuple[bytes, str]:
    """(frame, how it is wrong): every one must be refused before anything in it is looked at."""
    how = draw(st.sampled_from(["random", "magic+random", "damaged", "unknown signer", "forged signature",
                                "other hub", "revoked", "sql signer", "unsealed naming a key"]))
    village = senders["village"]
    if how == "random":
        return draw(st.binary(max_size=512)), how
    if how == "magic+random":
        return MAGIC + draw(st.binary(max_size=512)), how
    if how == "damaged":
        frame = genuine(served, village, draw(st.integers(0, 3)))
        at = draw(st.integers(0, 2**20)) % len(frame)
        return frame[:at] + bytes([frame[at] ^ (1 << draw(st.integers(0, 7)))]) + frame[at + 1:], how
    header = {
        "v": 1, "kind": "batch", "codec": "zlib", "sealed": False, "body_sha256": bytes(32), "signer": village.code,
        "signer_key": "0" * 16, "recipient": served.hub.hub_id, "recipient_key": "", "origin": village.code,
        "epoch": 1, "first_seq": 1, "last_seq": 1, "count": 1, "prev": bytes(32), "hlc": 1,
    }  # fmt: skip
    body = zlib.compress(pack([[village.code, 1, 1, 1, "application", "x", {"note": "x"}, {}]]))
    key = village.sign
    if how == "unknown signer":
        header.update(signer="360802-T09-99", origin="360802-T09-99")
        key = FOREIGN_KEY
    elif how == "forged signature":
        key = FOREIGN_KEY
    elif how == "other hub":
        header["recipient"] = "360803"
    elif how == "revoked":
        revoked = senders["revoked"]
        header.update(signer=revoked.code, origin=revoked.code)
        key = revoked.sign
    elif how == "sql signer":
        header.update(signer=draw(st.sampled_from(SQL_STRINGS)))
    else:
        header["recipient_key"] = "f" * 16
    return forge_frame(header, body, key), how


@hostile(400)
@given(data=st.data())
def test_push_of_refused_frames_is_4xx_counted_and_explained(served: Served, senders: dict[str, Sender],
                                                              data: st.DataObject) -> None:
    TALLY.add("http: push envelopes of random / damaged / forged / misaddressed / revoked frames")
    frames = data.draw(st.lists(refused_frame(served, senders), min_size=1, max_size=5), label="frames")
    before = counts(served.hub)
    rejected_before, _ = served.rejections()
    reply = served.push([f for f, _ in frames])
    assert 400 <= reply.status < 500, f"{[h for _, h in frames]}: {reply.status} {reply.body[:200]!r}"
    answer = reply.json()
    assert answer["error"] and answer["message"], answer
    after = counts(served.hub)
    revoked = sum(1 for _, how in frames if how == "revoked")
    moved = snapshot_unchanged(before, after, allow=("rejected", "alerts"))
    assert not moved, f"refused frames changed the hub: {moved}"
    assert after["alerts"] - before["alerts"] == revoked, "a revoked station still sending raises one alert a frame"
    rejected_after, last = served.rejections()
    assert rejected_after - rejected_before == len(frames), "every refused frame is counted for the operator"
    shown = last[: min(len(frames), 5)]
    assert all(str(r["reason"]).strip() for r in shown), shown
    for (_, how), row in zip(reversed(frames[-5:]), shown, strict=False):
        if how == "revoked":
            assert "revoked" in str(row["reason"]), row
        if how == "sql signer":
            # Stored and shown verbatim (cut to 64 characters), never executed.
            assert str(row["origin"]) in SQL_STRINGS or any(s.startswith(str(row["origin"])) for s in SQL_STRINGS)
    assert served.healthy()


def test_a_good_frame_among_refused_ones_is_applied_alone(served: Served, senders: dict[str, Sender]) -> None:
    TALLY.add("http: one authentic frame among forged ones")
    village = senders["village"]
    seq, _ = served.position(village)
    good = served.batch(village, [served.wire(village, seq, "application", village.fresh_id(),
                                              {"station": village.code, "number": f"{village.code}-good-{seq}"})])
    forged = forge_frame({"v": 1, "kind": "batch", "codec": "zlib", "sealed": False, "signer": village.code,
                          "signer_key": "0" * 16, "recipient": served.hub.hub_id, "recipient_key": "",
                          "origin": village.code, "epoch": 1, "first_seq": seq, "last_seq": seq, "count": 1,
                          "prev": bytes(32), "hlc": 1}, zlib.compress(pack([None])), FOREIGN_KEY)
    before = counts(served.hub)
    rejected_before, _ = served.rejections()
    reply = served.push([forged, good, b"junk"])
    assert reply.status == 200, reply.body[:300]
    acks = served.open_acks(village, reply)
    assert [a["result"] for a in acks] == ["rejected", "applied", "rejected"]
    assert all(a["reason"] for a in (acks[0], acks[2]))
    after = counts(served.hub)
    assert after["changes"] == before["changes"] + 1 and after["applications"] == before["applications"] + 1
    assert served.rejections()[0] == rejected_before + 2


# -- sizes, lies and bombs ------------------------------------------------------------------------------


@hostile(300)
@given(body=MUST_REFUSE, route=st.sampled_from(["/v1/sync/push", "/v1/enroll", "/v1/reconcile"]),
       ctype=st.sampled_from([FRAMES, "application/msgpack", "application/vnd.sanji.document"]))
def test_msgpack_that_lies_is_refused_on_every_body_route(served: Served, body: bytes, route: str,
                                                         ctype: str) -> None:
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
    raw = raw_http(served, (f"POST /v1/sync/push HTTP/1.1\r\nHost: hub\r\nContent-Type: {FRAMES}\r\n"
                            f"Content-Length: {length}\r\n\r\n").encode() + b"\x91\xc4\x01x")
    assert 400 <= status_of(raw) < 500, raw[:300]
    assert not snapshot_unchanged(before, counts(served.hub))
    assert served.healthy()


@pytest.mark.parametrize("header", [
    "Content-Length: -1", "Content-Length: abc", "Content-Length: 1\r\nContent-Length: 2",
    "Transfer-Encoding: chunked\r\nContent-Length: 5", "Transfer-Encoding: gzip, chunked",
])
def test_malformed_framing_headers_are_refused(served: Served, header: str) -> None:
    TALLY.add("http: malformed Content-Length / Transfer-Encoding")
    before = counts(served.hub)
    raw = raw_http(served, (f"POST /v1/sync/push HTTP/1.1\r\nHost: hub\r\nContent-Type: {FRAMES}\r\n{header}\r\n\r\n"
                            "0\r\n\r\n").encode())
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
    reply = served.request("POST", route, data=gzip_bomb(),
                           headers={"Content-Type": FRAMES, "Content-Encoding": "gzip"})
    assert 400 <= reply.status < 500, f"{route}: {reply.status} {reply.body[:200]!r}"
    assert not snapshot_unchanged(before, counts(served.hub), allow=("rejected",))
    assert rss_peak_bytes() < 1024 * 2**20, f"peak RSS {rss_peak_bytes() / 2**20:.0f} MiB after a gzip bomb"
    assert served.healthy()


def test_wrong_content_types_carry_nothing_in(served: Served, senders: dict[str, Sender]) -> None:
    village = senders["village"]
    seq, _ = served.position(village)
    frame = served.batch(village, [served.wire(village, seq, "application", village.fresh_id(),
                                               {"station": village.code, "number": f"{village.code}-ct-{seq}"})])
    before = counts(served.hub)
    for ctype in ("text/plain", "application/json", "application/x-www-form-urlencoded", "multipart/form-data",
                  "application/octet-stream", "image/png"):
        TALLY.add("http: a genuine push under a wrong content type")
        reply = served.push([frame], content_type=ctype)
        assert reply.status == 400 and "content type" in reply.json()["message"], reply.body[:200]
    reply = served.request("POST", "/v1/sync/push", data=pack([frame]), no_content_type=True)
    assert reply.status == 400
    assert not snapshot_unchanged(before, counts(served.hub))
    assert served.position(village)[0] == seq, "nothing was applied"


# -- signed request headers (pull, blobs) ------------------------------------------------------------------


@st.composite
def hostile_request_header(draw: st.DrawFn, served: Served, senders: dict[str, Sender]) -> tuple[str, str]:
    village = senders["village"]
    now = served.hub.clock()
    how = draw(st.sampled_from(["text", "b64 random", "b64 magic", "damaged doc", "unknown key", "stale", "future",
                                "wrong kind", "other hub", "bad fields", "revoked", "batch frame", "not base64"]))
    if how == "text":
        return draw(HEADER_VALUES), how
    if how == "b64 random":
        return base64.b64encode(draw(st.binary(max_size=400))).decode(), how
    if how == "b64 magic":
        return base64.b64encode(MAGIC + draw(st.binary(max_size=400))).decode(), how
    if how == "not base64":
        return draw(st.sampled_from(["%%%%", "abc", "====", "a b c", "SJF1?", "-_-_"])), how
    body: object = {"after": 0, "at_ms": now, "pending": 0, "catalogue_version": 0}
    kind, sender, recipient = "pull", village, served.hub.hub_id
    if how == "stale":
        body = {"after": 0, "at_ms": now - draw(st.integers(16 * 60_000, 10**12))}
    elif how == "future":
        body = {"after": 0, "at_ms": now + draw(st.integers(16 * 60_000, 2**61))}
    elif how == "wrong kind":
        kind = draw(st.sampled_from(["acks", "feed", "catalogue", "blob", "reconcile-request", "enrollment"]))
    elif how == "other hub":
        recipient = "360803"
    elif how == "bad fields":
        body = draw(st.one_of(
            st.dictionaries(st.sampled_from(["after", "at_ms", "pending", "catalogue_version"]),
                            st.one_of(st.text(max_size=5), st.booleans(), st.integers(-(2**63), -1),
                                      st.integers(2**62, 2**64 - 1), st.none(), st.floats(allow_nan=False)),
                            min_size=1),
            MSGPACK_VALUES))
    elif how == "revoked":
        sender = senders["revoked"]
    doc_sender = Sender(sender.code, sender.tier, FOREIGN_KEY if how == "unknown key" else sender.sign, sender.seal)
    from protocol.document import sign_document

    if how == "batch frame":
        doc = genuine(served, village, 7)
    else:
        doc = sign_document(kind, body, signer=doc_sender.code, recipient=recipient, signing_key=doc_sender.sign)
    if how == "damaged doc":
        at = draw(st.integers(0, 2**20)) % len(doc)  # the document's length varies with the time it carries
        doc = doc[:at] + bytes([doc[at] ^ 0x10]) + doc[at + 1:]
    return base64.b64encode(doc).decode(), how


@hostile(400)
@given(data=st.data())
def test_hostile_signed_request_headers_are_refused(served: Served, senders: dict[str, Sender],
                                                   data: st.DataObject) -> None:
    TALLY.add("http: hostile X-Sanji-Request on pull and blob routes")
    header, how = data.draw(hostile_request_header(served, senders), label="header")
    route = data.draw(st.sampled_from(["GET /v1/sync/pull", f"GET /v1/blobs/{'a' * 64}",
                                       f"PUT /v1/blobs/{'a' * 64}/0"]), label="route")
    method, path = route.split(" ")
    before = counts(served.hub)
    reply = served.request(method, path, headers={"X-Sanji-Request": header},
                           data=b"chunk" if method == "PUT" else None)
    assert 400 <= reply.status < 500, f"{how} on {route}: {reply.status} {reply.body[:300]!r}"
    assert reply.json().get("error"), reply.body[:200]
    assert not snapshot_unchanged(before, counts(served.hub), allow=("rejected",))
    assert served.healthy()


# -- enrolment ------------------------------------------------------------------------------------------


@st.composite
def hostile_enrolment(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["random", "value", "fields"]))
    if how == "random":
        return draw(st.binary(max_size=600))
    if how == "value":
        return pack(draw(MSGPACK_VALUES))
    token = draw(st.one_of(st.sampled_from(SQL_STRINGS), st.text(max_size=60), st.binary(max_size=40),
                           st.integers(), st.just("SJT-" + "A" * 24)))
    fields = {"token": token, "station": draw(st.one_of(st.sampled_from(SQL_STRINGS), st.text(max_size=30))),
              "sign_pub": draw(st.binary(max_size=40)), "seal_pub": draw(st.binary(max_size=40))}
    keep = draw(st.sets(st.sampled_from(sorted(fields))))
    return pack({k: v for k, v in fields.items() if k in keep or draw(st.booleans())})


@hostile(200)
@given(body=hostile_enrolment())
def test_hostile_enrolments_are_refused_and_consume_nothing(served: Served, senders: dict[str, Sender],
                                                            body: bytes) -> None:
    TALLY.add("http: hostile enrolment requests")
    before = counts(served.hub)
    used_before = served.hub.store.conn.execute("SELECT COUNT(*) FROM tokens WHERE used_ms IS NOT NULL").fetchone()
    reply = served.request("POST", "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"})
    assert 400 <= reply.status < 500, f"{reply.status} {reply.body[:300]!r}"
    assert reply.json().get("error")
    assert not snapshot_unchanged(before, counts(served.hub))
    used_after = served.hub.store.conn.execute("SELECT COUNT(*) FROM tokens WHERE used_ms IS NOT NULL").fetchone()
    assert used_before == used_after
    assert served.healthy()


def test_a_genuine_enrolment_still_works_after_all_that(served: Served) -> None:
    """The control: the refusals above are the hub refusing, not a broken route."""
    token = enrollment.register(served.hub, station=f"{TOWNSHIP}-07", name="对照站", tier="village", parent=TOWNSHIP)
    sign, seal = signing_key_from_seed(bytes([7]) * 32), sealing_key_from_seed(bytes([8]) * 32)
    body = pack({"token": token, "station": f"{TOWNSHIP}-07", "sign_pub": public_bytes(sign),
                 "seal_pub": public_bytes(seal)})
    reply = served.request("POST", "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"})
    assert reply.status == 200, reply.body[:300]
    again = served.request("POST", "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"})
    assert again.status == 403 and "already been used" in again.json()["message"]


@pytest.fixture(autouse=True, scope="module")
def _hub_still_serves(served: Served) -> Iterator[None]:
    yield
    assert served.healthy()
