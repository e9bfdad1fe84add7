"""Every HTTP route of a real hub, fed what an attacker or a broken station would send.

Random bytes, msgpack and JSON garbage, wrong content types, SQL in path and query parameters, hostile
`X-Sanji-Request` headers and cookies, on every route the app serves, plus malformed login and dashboard
forms. Each answer is a 4xx with a reason on the sync API (never a 5xx anywhere), the hub keeps
answering `/healthz`, nothing but the record of refusals changes, and memory stays bounded.

The routes are read from the app's router, so routes added later (dashboard, metrics, blobs) are
covered as they appear. Oversize, lying and compressed bodies are in ``test_request_bodies``; forged
frames, signed request headers and enrolments on the sync routes are in ``test_sync_routes``.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from protocol.codec import pack
from protocol.frame import MAGIC

from .harness import (
    FRAMES,
    SQL_STRINGS,
    TALLY,
    Sender,
    Served,
    counts,
    hostile,
    snapshot_unchanged,
)
from .helpers import HEADER_VALUES, MSGPACK_VALUES

pytestmark = pytest.mark.usefixtures("_hub_still_serves")

API_PREFIX = "/v1/"


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
    st.sampled_from(
        [
            "..",
            "../../etc/passwd",
            "%2e%2e%2f",
            "0" * 64,
            "f" * 64,
            "-1",
            "99999999999999999999",
            " ",
            "\u202e",
            "<script>alert(1)</script>",
            "{sha256}",
            "360802-T01-01",
        ]
    ),
    st.text(min_size=1, max_size=80),
)

CONTENT_TYPES = st.sampled_from(
    [
        FRAMES,
        "application/msgpack",
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "text/html; charset=utf-8",
        f"{FRAMES}; charset=binary",
        "application/vnd.sanji.frames+msgpack+gzip",
        "image/png",
        "*/*",
        None,
    ]
)


BODIES = st.one_of(
    st.binary(max_size=2048),
    MSGPACK_VALUES.map(pack),
    st.lists(st.binary(max_size=300), min_size=1, max_size=4).map(pack),  # a push envelope of junk frames
    st.lists(st.binary(max_size=300).map(lambda b: MAGIC + b), min_size=1, max_size=4).map(pack),
    st.dictionaries(
        st.text(max_size=12), st.one_of(st.text(max_size=40), st.sampled_from(SQL_STRINGS)), max_size=5
    ).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(
        st.sampled_from(["user", "password", "csrf", "next", "note", "station", "token"]),
        st.one_of(st.text(max_size=40), st.sampled_from(SQL_STRINGS)),
        max_size=5,
    ).map(lambda d: "&".join(f"{quote(k)}={quote(v)}" for k, v in d.items()).encode()),
    st.just(b""),
)


def fill(template: str, segments: list[str]) -> str:
    it = iter(segments)
    return _PARAM.sub(lambda m: quote(next(it, "x"), safe=""), template)


def known_bug(method: str, template: str, content_type: str | None, body: bytes | None) -> bool:
    """Combinations that hit a bug pinned by its own strict xfail test; none are open now."""
    return False


# Public and read-only: the hub's key history, signed by its root, which any station may fetch before
# it can prove anything. A request that happens to be well formed is rightly answered 200; it must
# still never answer 5xx nor change the hub (both checked below).
PUBLIC_READS = frozenset({("GET", "/v1/keys"), ("HEAD", "/v1/keys")})


def expectations(method: str, template: str, status: int) -> str | None:
    """None when `status` is an acceptable answer to garbage on this route, else why not."""
    if status >= 500:
        return f"{method} {template} answered {status}"
    if (method, template) in PUBLIC_READS:
        return None
    if template.startswith(API_PREFIX) and not 400 <= status < 500:
        return f"{method} {template} answered {status} to garbage; the sync API must refuse it with a 4xx"
    return None


# -- every route, garbage in ----------------------------------------------------------------------------


@hostile(1000)
@given(data=st.data())
def test_every_route_refuses_garbage_without_a_5xx(
    served: Served, senders: dict[str, Sender], data: st.DataObject
) -> None:
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
    params = data.draw(
        st.dictionaries(
            st.sampled_from(["station", "after", "status", "q", "page", "next"]), HOSTILE_SEGMENTS, max_size=3
        ),
        label="query",
    )
    before = counts(served.hub)
    reply = served.request(
        method, path, data=body, headers=headers, params=params, no_content_type=content_type is None
    )
    problem = expectations(method, template, reply.status)
    assert problem is None, f"{problem}: {reply.body[:300]!r}"
    if template.startswith(API_PREFIX) and method != "HEAD":
        assert reply.body, "a refusal must say why"
    moved = snapshot_unchanged(before, counts(served.hub), allow=("rejected",))
    assert not moved, f"{method} {path} changed the hub: {moved}"
    assert served.healthy()


# Regression: malformed forms once made the dashboard answer 500.
@pytest.mark.parametrize(
    "content_type,body",
    [
        ("multipart/form-data; boundary=xyz", b""),
        ("multipart/form-data; boundary=xyz", b"user=a&password=b"),
        ("multipart/form-data", b""),
        ("application/x-www-form-urlencoded", b"\x80"),
        ("application/x-www-form-urlencoded", b"user=\xff\xfe&password=x"),
    ],
)
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
            async with http.post(
                f"{served.url}/stations/enrol", data=b"", headers={"Content-Type": "multipart/form-data; boundary=xyz"}
            ) as resp:
                await resp.read()
                return resp.status

    status = served.loop.run_until_complete(go())
    assert served.healthy()
    assert 400 <= status < 500, f"signed-in POST /stations/enrol with a malformed multipart body: {status}"
