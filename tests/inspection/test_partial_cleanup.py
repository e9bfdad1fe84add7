"""Photo uploads abandoned half-way are removed by the hub's nightly job; whole photos never are.

A partial upload's age is the newest modification time of its chunk files, against the hub's clock.
Tests set those times explicitly (``os.utime``), so "eight days ago" is exact whatever the disk's own
clock says. A station that comes back after its upload was dropped is told the hub holds no chunks
and sends the photo again from chunk 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from hub import blobindex, nightly
from hub.app import HubConfig, create_app
from node import inspection, transfer
from protocol.blob import CHUNK_SIZE, BlobRequest, chunk_count, chunk_span
from protocol.codec import unpack
from replica.ids import now_ms
from tests.conftest import World
from tests.inspection.conftest import FIELD, Scene, photo

DAY_MS = 86_400_000


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send(world: World, data: bytes, indices: list[int]) -> None:
    """Chunks of a photo as the blob route hands them over once the station's signature checks out."""
    for index in indices:
        start, length = chunk_span(len(data), index)
        part = data[start : start + length]
        req = BlobRequest("chunk", sha_of(data), len(data), index, sha_of(part), world.clock())
        blobindex.receive_chunk(world.hub, FIELD, req, part, source="test")


def age(path: Path, at_ms: int) -> None:
    """Make a partial upload (its folder and every file in it), or a blob file, look last touched at ``at_ms``."""
    for p in [*(sorted(path.iterdir()) if path.is_dir() else []), path]:
        os.utime(p, ns=(at_ms * 1_000_000, at_ms * 1_000_000))


def partial_dir(world: World, data: bytes) -> Path:
    return world.root / "hub" / "blobs" / "partial" / sha_of(data)


def upload_rows(world: World) -> set[str]:
    return {str(r[0]) for r in world.hub.store.conn.execute("SELECT sha256 FROM blob_uploads")}


def held_chunks(world: World, data: bytes) -> list[int]:
    answer = blobindex.progress(world.hub, FIELD, BlobRequest("query", sha_of(data), len(data)))
    return list(answer["held"])  # type: ignore[call-overload]


def reported(scene: Scene, tmp_path: Path, sizes: tuple[int, ...]) -> list[bytes]:
    task = scene.assigned()
    shots = [photo(tmp_path, f"p{i}.jpg", n) for i, n in enumerate(sizes)]
    inspection.report(scene.field, task, result="pass", findings=["属实"], photos=shots)
    scene.world.push(scene.field)
    return [p.read_bytes() for p in shots]


def test_old_partials_are_dropped_and_reported_fresh_ones_and_whole_blobs_kept(
    scene: Scene, world: World, tmp_path: Path
) -> None:
    old, fresh, whole = reported(scene, tmp_path, (2 * CHUNK_SIZE + 10, 2 * CHUNK_SIZE, 5_000))
    send(world, old, [0, 1])  # abandoned after two of three chunks
    send(world, fresh, [0])  # still being resumed
    send(world, whole, [0])  # complete: filed, its chunks gone
    now = world.clock()
    age(partial_dir(world, old), now - 8 * DAY_MS)
    age(partial_dir(world, fresh), now - 6 * DAY_MS)
    store = blobindex.store_of(world.hub)
    age(store.path(sha_of(whole)), now - 400 * DAY_MS)  # a whole blob is never "abandoned", however old
    # Chunks left over beside a blob already filed (the hub stopped between filing and tidying up).
    store.put_chunk(sha_of(whole), 0, whole)
    age(partial_dir(world, whole), now - 30 * DAY_MS)
    assert upload_rows(world) == {sha_of(old), sha_of(fresh)}

    result = nightly.run(world.hub, do_backup=False)
    assert result["outcome"] == "ok"
    dropped = result["report"]["partial_uploads"]
    assert dropped == {"dropped": 2, "bytes": 2 * CHUNK_SIZE + len(whole), "kept": 1, "retention_days": 7}
    # The same figures are in the stored morning report.
    row = world.hub.store.conn.execute("SELECT report FROM reports WHERE run=?", (result["run"],)).fetchone()
    assert unpack(row[0])["partial_uploads"] == dropped  # type: ignore[index]

    assert not partial_dir(world, old).exists() and held_chunks(world, old) == []
    assert upload_rows(world) == {sha_of(fresh)}
    assert held_chunks(world, fresh) == [0]
    assert blobindex.held(world.hub, sha_of(whole)) and store.read(sha_of(whole)) == whole
    assert not partial_dir(world, whole).exists()
    assert blobindex.missing(world.hub, [sha_of(b) for b in (old, fresh, whole)]) == [sha_of(old), sha_of(fresh)]

    # The fresh one is dropped once it too is past the retention period, which is configurable.
    again = nightly.run(world.hub, do_backup=False, partial_retention_days=5)["report"]["partial_uploads"]
    assert again == {"dropped": 1, "bytes": CHUNK_SIZE, "kept": 0, "retention_days": 5}
    assert held_chunks(world, fresh) == [] and upload_rows(world) == set()
    assert blobindex.held(world.hub, sha_of(whole))


def test_a_partial_still_receiving_chunks_is_kept(scene: Scene, world: World, tmp_path: Path) -> None:
    (data,) = reported(scene, tmp_path, (3 * CHUNK_SIZE,))
    send(world, data, [0])
    age(partial_dir(world, data), world.clock() - 10 * DAY_MS)
    send(world, data, [1])  # the station came back yesterday: the newest chunk counts, not the first
    age(partial_dir(world, data), world.clock() - 10 * DAY_MS)
    age(partial_dir(world, data) / "000001", world.clock() - DAY_MS)
    assert nightly.run(world.hub, do_backup=False)["report"]["partial_uploads"]["dropped"] == 0
    assert held_chunks(world, data) == [0, 1]


async def test_a_station_resumes_a_dropped_upload_from_chunk_0(scene: Scene, world: World, tmp_path: Path) -> None:
    world.clock.ms = now_ms()  # the served hub checks request times against the wall clock
    (data,) = reported(scene, tmp_path, (3 * CHUNK_SIZE + 7,))  # four chunks
    server = TestServer(create_app(HubConfig(folder=world.root / "hub")))
    async with server, aiohttp.ClientSession() as session:
        url = str(server.make_url("")).rstrip("/")
        cut = await transfer.upload_pending(scene.field, session, url, max_chunks=3)
        assert (cut.sent_chunks, cut.complete, cut.pending) == (3, 0, 1)
        assert held_chunks(world, data) == [0, 1, 2]

        age(partial_dir(world, data), world.clock() - 8 * DAY_MS)
        report = nightly.run(world.hub, do_backup=False)["report"]["partial_uploads"]
        assert report["dropped"] == 1 and report["bytes"] == 3 * CHUNK_SIZE

        # The hub now says it holds nothing of the photo, so the station sends all of it again.
        query = BlobRequest("query", sha_of(data), len(data), at_ms=scene.field.clock())
        async with session.get(
            f"{url}/v1/blobs/{sha_of(data)}",
            headers={transfer.REQUEST_HEADER: transfer.request_header(scene.field, query)},
        ) as r:
            assert r.status == 200
            answer = await r.json()
        assert answer["held"] == [] and answer["complete"] is False
        resumed = await transfer.upload_pending(scene.field, session, url)
        assert (resumed.skipped_chunks, resumed.sent_chunks, resumed.complete, resumed.pending) == (0, 4, 1, 0)
        assert resumed.errors == []
    store = blobindex.store_of(world.hub)
    assert store.read(sha_of(data)) == data and blobindex.held(world.hub, sha_of(data))
    assert not partial_dir(world, data).exists() and upload_rows(world) == set()
    assert chunk_count(len(data)) == 4


def run_cli(*argv: str) -> tuple[int, dict[str, object]]:
    from sanji.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main([*argv, "--json"])
    text = out.getvalue().strip()
    return code, json.loads(text) if text else {}


def test_hub_reconcile_takes_the_retention_period(scene: Scene, world: World, tmp_path: Path) -> None:
    """`sanji hub reconcile` runs on the wall clock, as an operator would run it."""
    (data,) = reported(scene, tmp_path, (2 * CHUNK_SIZE,))
    send(world, data, [0])
    age(partial_dir(world, data), now_ms() - 2 * DAY_MS)
    hub = str(world.root / "hub")
    code, out = run_cli("hub", "reconcile", hub, "--no-backup", "--partial-retention-days", "3")
    assert code == 0 and out["report"]["partial_uploads"]["kept"] == 1  # type: ignore[index]
    assert held_chunks(world, data) == [0]
    code, out = run_cli("hub", "reconcile", hub, "--no-backup", "--partial-retention-days", "1")
    assert code == 0 and out["report"]["partial_uploads"]["dropped"] == 1  # type: ignore[index]
    assert held_chunks(world, data) == []
    code, _ = run_cli("hub", "reconcile", hub, "--no-backup", "--partial-retention-days", "-1")
    assert code == 2
