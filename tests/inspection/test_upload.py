"""Photo uploads over HTTP, in-process: resumable chunks, signed headers, tampering refused.

The hub app is served for real by aiohttp's TestServer on the hub folder (on the wall clock, as
`sanji hub serve` runs); the field device uploads with the same code `sanji node sync` runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from hub import blobindex, operations
from hub.app import HubConfig, create_app
from node import blobs, transfer
from node.station import Station
from protocol.blob import CHUNK_SIZE, BlobRequest
from replica.ids import now_ms
from tests.conftest import World
from tests.inspection.conftest import Scene, photo
from tests.inspection.test_report import sha_of


async def test_an_upload_cut_short_resumes_with_only_the_missing_chunks(
    scene: Scene, world: World, tmp_path: Path
) -> None:
    world.clock.ms = now_ms()  # the served hub checks request times against the wall clock
    task = scene.assigned()
    from node import inspection

    shots = [
        photo(tmp_path, "a.jpg", 3 * CHUNK_SIZE + 5),
        photo(tmp_path, "b.jpg", 2 * CHUNK_SIZE),
        photo(tmp_path, "c.png", 1_000),
    ]  # 4 + 2 + 1 chunks
    out = inspection.report(scene.field, task, result="pass", findings=["属实"], photos=shots)
    world.push(scene.field)
    st = scene.field
    server = TestServer(create_app(HubConfig(folder=world.root / "hub")))
    async with server, aiohttp.ClientSession() as session:
        url = str(server.make_url("")).rstrip("/")
        cut = await transfer.upload_pending(st, session, url, max_chunks=3)  # the line drops after 3 chunks
        assert (cut.sent_chunks, cut.complete, cut.pending, cut.errors) == (3, 0, 3, [])

        # A chunk whose bytes differ from what the station signed is refused as tampering.
        first = shots[0].read_bytes()
        real = first[3 * CHUNK_SIZE :]
        req = BlobRequest("chunk", sha_of(shots[0]), len(first), 3, hashlib.sha256(real).hexdigest(), st.clock())
        headers = {transfer.REQUEST_HEADER: transfer.request_header(st, req)}
        async with session.put(f"{url}/v1/blobs/{sha_of(shots[0])}/3", data=b"\0" * len(real), headers=headers) as resp:
            assert resp.status == 422 and (await resp.json())["error"] == "tampered"
        # The same signed header cannot be moved to another chunk or blob.
        async with session.put(f"{url}/v1/blobs/{sha_of(shots[0])}/2", data=real, headers=headers) as resp:
            assert resp.status == 400
        # Unsigned and stale requests are refused.
        async with session.get(f"{url}/v1/blobs/{sha_of(shots[0])}") as resp:
            assert resp.status == 400 and (await resp.json())["error"] == "unauthenticated"
        stale = BlobRequest("query", sha_of(shots[0]), len(first), at_ms=st.clock() - 3_600_000)
        async with session.get(
            f"{url}/v1/blobs/{sha_of(shots[0])}", headers={transfer.REQUEST_HEADER: transfer.request_header(st, stale)}
        ) as resp:
            assert resp.status == 400 and (await resp.json())["error"] == "stale"

        resumed = await transfer.upload_pending(st, session, url)
        assert (resumed.skipped_chunks, resumed.sent_chunks, resumed.complete, resumed.pending) == (3, 4, 3, 0)
        assert resumed.errors == []
        again = await transfer.upload_pending(st, session, url)
        assert (again.sent_chunks, again.complete) == (0, 0)  # nothing left to send

    store = blobindex.store_of(world.hub)
    for path in shots:
        assert store.read(sha_of(path)) == path.read_bytes() and store.verify(sha_of(path))
    assert blobs.pending(st) == []
    assert operations.show(world.hub, scene.number)["inspections"][0]["missing_blobs"] == []  # type: ignore[index]
    assert out["photos"] == [sha_of(p) for p in shots]


async def test_photo_upload_failures_are_reported_not_raised(scene: Scene, world: World, tmp_path: Path) -> None:
    world.clock.ms = now_ms()
    task = scene.assigned()
    from node import inspection

    inspection.report(scene.field, task, result="pass", findings=["属实"], photos=[photo(tmp_path, "a.jpg", 500)])
    st: Station = scene.field
    async with aiohttp.ClientSession() as session:
        # The report has not been pushed: the hub refuses a photo no report of ours names yet.
        server = TestServer(create_app(HubConfig(folder=world.root / "hub")))
        async with server:
            url = str(server.make_url("")).rstrip("/")
            refused = await transfer.upload_pending(st, session, url)
        assert refused.pending == 1 and "请先同步踏勘报告" in refused.errors[0]
        # The hub is gone: reported, and the photo stays pending.
        gone = await transfer.upload_pending(st, session, "http://127.0.0.1:9")
        assert gone.pending == 1 and "连不上区局" in gone.errors[0]
