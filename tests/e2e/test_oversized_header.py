"""A real `sanji hub serve` answers oversized signed-request headers with a 400 and a reason, keeps
serving, and writes no traceback to its log (its stderr)."""

from __future__ import annotations

import json

import pytest

from protocol.limits import REQUEST_HEADER_MAX_CHARS

from .conftest import Hub
from .processes import http

pytestmark = pytest.mark.slow


def test_oversized_signed_request_headers_get_a_400_and_no_traceback(hub: Hub) -> None:
    server = hub.start()
    for path in ("/v1/sync/pull", "/v1/blobs/" + "a" * 64):
        # Over Sanji's own cap: refused by the hub, with its reason in JSON.
        status, body = http("GET", hub.url + path, headers={"X-Sanji-Request": "A" * (REQUEST_HEADER_MAX_CHARS + 1)})
        assert status == 400, body
        doc = json.loads(body)
        assert doc["error"] == "too_large" and "签名请求头过长" in doc["message"]
        # Over aiohttp's header-field cap: refused by the HTTP parser before any Sanji code runs.
        for size in (9000, 200_000):
            status, body = http("GET", hub.url + path, headers={"X-Sanji-Request": "A" * size})
            assert status == 400 and len(body) < 400, (size, body[:200])
    status, _ = http("GET", hub.url + "/healthz")
    assert status == 200
    server.stop()
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log, log[-3000:]
    assert log.count("拒收无法解析的 HTTP 请求") == 4, log[-3000:]
