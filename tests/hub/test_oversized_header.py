"""An oversized X-Sanji-Request header gets a clean 400 with a reason, and the hub's log gets one line
about it, never a traceback: whether Sanji refuses it (over its own cap) or aiohttp's HTTP parser does
(over aiohttp's header-field cap of 8190 bytes)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import HubConfig, create_app
from hub.service import Hub
from hub.web.signed_request import REQUEST_HEADER
from protocol.limits import REQUEST_HEADER_MAX_CHARS
from tests.conftest import HUB_ID

AIOHTTP_FIELD_CAP = 8190  # aiohttp's default max_field_size for a request header
ROUTES = (("GET", "/v1/sync/pull"), ("GET", "/v1/blobs/" + "a" * 64), ("PUT", "/v1/blobs/" + "a" * 64 + "/0"))


pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


@pytest.fixture
async def client(tmp_path: Path, hub_database: str | None) -> AsyncIterator[TestClient]:
    Hub.create(
        tmp_path / "hub", district=HUB_ID, name="测试区行政审批局", catalogue=None, database=hub_database
    ).close()
    c = TestClient(TestServer(create_app(HubConfig(folder=tmp_path / "hub"))))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_header_over_sanjis_cap_is_a_400_with_a_reason(
    client: TestClient, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    size = REQUEST_HEADER_MAX_CHARS + 1
    assert size < AIOHTTP_FIELD_CAP, "the cap must sit below aiohttp's, or Sanji never gets to say why"
    resp = await client.request(method, path, headers={REQUEST_HEADER: "A" * size}, data=b"")
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "too_large"
    assert "签名请求头过长" in body["message"] and str(size) in body["message"]
    _no_traceback(caplog)
    assert (await client.get("/healthz")).status == 200


async def test_a_header_at_sanjis_cap_is_read_and_judged_on_its_content(client: TestClient) -> None:
    resp = await client.get("/v1/sync/pull", headers={REQUEST_HEADER: "A" * REQUEST_HEADER_MAX_CHARS})
    assert resp.status == 400
    assert (await resp.json())["error"] != "too_large"


@pytest.mark.parametrize("size", [AIOHTTP_FIELD_CAP + 1, 64 * 1024, 1024 * 1024])
async def test_a_header_over_aiohttps_cap_is_a_400_and_one_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture, size: int
) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await client.get("/v1/sync/pull", headers={REQUEST_HEADER: "A" * size})
    assert resp.status == 400
    text = await resp.text()
    assert len(text) < 400, "a short reason, not an echo of the header"
    _no_traceback(caplog)
    refused = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING
    assert "过长" in refused[0].getMessage() and "AAAA" not in refused[0].getMessage()
    assert (await client.get("/healthz")).status == 200


def test_a_real_error_keeps_its_traceback() -> None:
    """The filter quiets only what the HTTP parser refused; a bug in the hub still logs in full."""
    from hub.web import http_log

    f = http_log.ParseErrorsOnOneLine()
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request from %s",
            ("127.0.0.1",),
            sys.exc_info(),
        )
    assert f.filter(record) and record.exc_info is not None and record.levelno == logging.ERROR
