"""Staff see on every page of the station UI when the hub answers but its feed stopped advancing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.server import create_app
from tests.ui.inproc import Pair

pytestmark = pytest.mark.slow


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(pair.root / "village", 3600.0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def test_the_stale_feed_warning_shows_on_the_page_and_in_the_status_poll(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    assert "区局数据可能已停更" not in await (await client.get("/")).text()
    with pair.st.transaction():
        pair.st.meta.set("hub_url", pair.st.meta.text("hub_url") or "http://127.0.0.1:9")
        pair.st.meta.set("stale_rounds", 1)
    html = await (await client.get("/")).text()
    assert '<div class="notice warn" role="alert">区局数据可能已停更' in html
    bar = await (await client.get("/status.json")).json()
    assert "区局数据可能已停更" in bar["freshness_warning"]


async def test_sync_now_does_not_say_done_when_pages_were_refused(
    client: TestClient[Any, Any], pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node import client as node_client
    from tests.ui.inproc import csrf_of

    async def refused_pages(st: object, *a: object, **k: object) -> node_client.RoundResult:
        return node_client.RoundResult(0, 0, 1, 0, [], feed_problems=["区局的数据页过大，已拒收"])

    monkeypatch.setattr(node_client, "sync_round", refused_pages)
    token = csrf_of(await (await client.get("/")).text())
    resp = await client.post("/sync", data={"csrf": token, "back": "/"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("sync=refused")
