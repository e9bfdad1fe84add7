"""Two hub apps over one hub folder, as two workers of `hub serve --workers 2` are, answering in turn.

Each app opens its own connections (the loop's, the group committer's, the read model's) and keeps its
own memory, so what one learns the other knows only through the store or the folder. Whichever
answers: a station's batches pushed to both at once apply once and in order; an operator signed in
through one is signed in on the other, signed out everywhere at once, and a lock-out counted on one
holds on the other; a key rotated by the CLI is used by both at once, for the receipts the committer
signs too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import keyring
from hub.app import HubConfig, create_app
from hub.appkeys import HUB, WRITER
from hub.dashboard.auth import MAX_FAILURES, SESSION_COOKIE
from hub.service import Hub
from node import client as node_client
from node import uplink
from protocol.acks import Ack, Acks
from protocol.codec import pack
from protocol.document import open_document
from sync.session import AckResult
from tests.ui.inproc import OPERATOR, PASSWORD, Pair, csrf_of, login

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("hub_backend")]
FRAMES = "application/vnd.sanji.frames+msgpack"


@dataclass
class Two:
    pair: Pair
    a: TestClient[Any, Any]
    b: TestClient[Any, Any]

    def url(self, client: TestClient[Any, Any]) -> str:
        return str(client.make_url("")).rstrip("/")


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[Two]:
    pair = Pair(tmp_path)
    clients = [TestClient(TestServer(create_app(HubConfig(folder=pair.hub.folder)))) for _ in range(2)]
    for c in clients:
        await c.start_server()
    try:
        yield Two(pair, clients[0], clients[1])
    finally:
        for c in clients:
            await c.close()
        pair.close()


async def test_the_same_batches_pushed_to_both_workers_at_once_apply_once_in_order(two: Two) -> None:
    st, hub = two.pair.st, two.pair.hub
    for _ in range(6):  # six batches: six links of the station's chain
        two.pair.accept()
        uplink.build_outbox(st)
    frames = [frame for _, frame in uplink.unsettled(st)]
    assert len(frames) == 6
    body = pack(frames)

    async def push(client: TestClient[Any, Any]) -> list[Ack]:
        resp = await client.post("/v1/sync/push", data=body, headers={"Content-Type": FRAMES})
        assert resp.status == 200
        doc = open_document(await resp.read(), kind=Acks.KIND, recipient=st.code, verify_key=hub._own_key)
        return list(Acks.from_wire(doc.body).acks)

    # Each worker's group committer takes the frames in over its own connection, in one write
    # transaction that reads the chain's head afresh (BEGIN IMMEDIATE): whichever goes second finds
    # every link it is given already held.
    first, second = await asyncio.gather(push(two.a), push(two.b))
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        assert sorted((a.result, b.result)) == [AckResult.APPLIED.value, AckResult.DUPLICATE.value], (i, a, b)
    assert hub.store.changes_logged(st.code) == 6
    assert hub.store.cursor(st.code, 1).next_seq == 7
    assert [a for a in hub.store.alerts() if a["kind"] in ("fork", "gap")] == []
    assert hub.store.open_quarantine() == 0


async def _home(client: TestClient[Any, Any], token: str) -> int:
    resp = await client.get("/", cookies={SESSION_COOKIE: token}, allow_redirects=False)
    return resp.status


async def test_an_operator_signed_in_through_one_worker_is_signed_in_on_the_other(two: Two) -> None:
    resp = await login(two.a)
    assert resp.status == 303
    token = resp.cookies[SESSION_COOKIE].value
    assert await _home(two.b, token) == 200
    assert await _home(two.b, "not-a-session") == 303  # to /login: the other worker checks, it does not guess

    # Signed out through the second worker: the first no longer knows the session either.
    page = await two.b.get("/", cookies={SESSION_COOKIE: token})
    out = await two.b.post(
        "/logout", data={"csrf": csrf_of(await page.text())}, cookies={SESSION_COOKIE: token}, allow_redirects=False
    )
    assert out.status == 303
    assert await _home(two.a, token) == 303


async def test_a_lock_out_counted_on_one_worker_holds_on_the_other(two: Two) -> None:
    for _ in range(MAX_FAILURES):
        assert (await login(two.a, password="wrong-password-x")).status == 401
    paused = await login(two.b, OPERATOR, PASSWORD)  # the right password, on the other worker
    assert paused.status == 429
    assert "失败次数过多" in await paused.text()


async def test_a_key_rotated_by_the_cli_is_used_by_both_workers_at_once(two: Two) -> None:
    # Both workers have answered (and so read the hub's keys) before the rotation.
    for c in (two.a, two.b):
        assert (await c.get("/healthz")).status == 200
    cli = Hub.open(two.pair.hub.folder)  # `sanji hub rotate-key`, another process
    try:
        new = keyring.rotate_key(cli)["key_id"]
    finally:
        cli.close()

    st = two.pair.st
    two.pair.accept()
    # The station follows the new key list, then pushes through the second worker (whose committer signs
    # the receipts) and pulls through the first.
    pushed = await node_client.sync_round(st, two.url(two.b))
    assert (pushed.pushed, pushed.refused, pushed.pending) == (1, [], 0)
    pulled = await node_client.sync_round(st, two.url(two.a))
    assert pulled.refused == [] and pulled.pending == 0
    assert [c.server.app[HUB].keys.sign_key_id for c in (two.a, two.b)] == [new, new]
    # The committer's hub follows before it signs anything: here, the receipt of the push.
    assert two.b.server.app[WRITER].keys.sign_key_id == new
