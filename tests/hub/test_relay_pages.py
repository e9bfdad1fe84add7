"""The dashboard and the township relay (issue 17): the station tree and the station page mark a village
whose last contact came only through its township ("仅经乡镇中转", the township named), and the alerts
list names a relay that misbehaved, with the villages it touched. On SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import operations, relay_alerts
from hub.app import HubConfig, create_app
from hub.ingest import ingest_frame
from node import uplink
from tests.ui.inproc import Pair, login

VILLAGE, TOWNSHIP = "360802-T01-01", "360802-T01"

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


@pytest.fixture
def pair(tmp_path: Path, hub_database: str | None) -> Iterator[Pair]:
    p = Pair(tmp_path, database=hub_database)
    yield p
    p.close()


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(HubConfig(folder=pair.root / "hub")))) as c:
        yield c


def push(pair: Pair, source: str) -> None:
    """The village's next batch, taken by the hub as having come by ``source``."""
    pair.accept()
    uplink.build_outbox(pair.st)
    for _, frame in uplink.unsettled(pair.st):
        ingest_frame(pair.hub, frame, source=source)


def marks(html: str) -> dict[str, str]:
    """Station code -> the township it is marked as reachable only through, in the station tree."""
    tree = html[html.index('id="station-tree"') :]
    out = {}
    for row in re.findall(r'<tr class="level-\d" data-station="([^"]+)">(.*?)</tr>', tree, re.S):
        mark = re.search(r'data-relay-only="([^"]+)"', row[1])
        if mark:
            out[row[0]] = mark.group(1)
    return out


async def test_the_tree_marks_a_village_reached_only_through_its_township(
    pair: Pair, client: TestClient[Any, Any]
) -> None:
    await login(client)
    push(pair, "http:10.1.1.9")
    assert marks(await (await client.get("/")).text()) == {}

    push(pair, f"relay:{TOWNSHIP}@10.1.5.1")  # the township forwarded it
    html = await (await client.get("/")).text()
    assert marks(html) == {VILLAGE: TOWNSHIP}
    assert f"仅经乡镇中转（{TOWNSHIP}）" in html
    assert marks(await (await client.get("/stations")).text()) == {VILLAGE: TOWNSHIP}
    page = await (await client.get(f"/stations/{VILLAGE}")).text()
    assert f'data-relay-only="{TOWNSHIP}"' in page and f"乡镇中转站 {TOWNSHIP} 转来的" in page
    shown = {s["code"]: s["last_seen_via"] for s in operations.status(pair.hub)["stations"]}
    assert shown[VILLAGE] == f"relay:{TOWNSHIP}"  # `hub status --json`
    assert f"仅经乡镇中转 {TOWNSHIP}" in operations.status_text(operations.status(pair.hub))

    push(pair, "http:10.1.1.9")  # it reached the hub itself again
    assert marks(await (await client.get("/")).text()) == {}


async def test_the_alerts_name_a_misbehaving_relay_and_its_villages(pair: Pair, client: TestClient[Any, Any]) -> None:
    await login(client)
    with pair.hub.store.transaction():
        assert relay_alerts.reported(pair.hub.store, VILLAGE, TOWNSHIP, "bad_page", 1_700_000_000_000, pair.hub.clock())
    pair.accept()
    uplink.build_outbox(pair.st)
    frame = uplink.unsettled(pair.st)[0][1]
    refused = ingest_frame(pair.hub, frame[:-12], source=f"relay:{TOWNSHIP}@10.1.5.1")
    assert refused.batch == b""  # not authentic: refused, and the relay named

    html = await (await client.get("/")).text()
    alerts = html[html.index("安全警报") :]
    assert alerts.count(f"乡镇中转站 {TOWNSHIP} 异常") == 2, alerts
    assert "乡镇中转站异常（区局所见）" in alerts and "乡镇中转站异常" in alerts and VILLAGE in alerts
    assert f'href="/stations/{TOWNSHIP}"' in alerts
    page = await (await client.get(f"/stations/{TOWNSHIP}")).text()
    assert page.count(f"乡镇中转站 {TOWNSHIP} 异常") == 2  # the township's own page lists them
    metrics = await (await client.get("/metrics")).text()
    assert re.search(r'sanji_security_alerts_total\{kind="relay"\} 1', metrics), metrics
    assert re.search(r'sanji_security_alerts_total\{kind="relay_seen"\} 1', metrics), metrics
