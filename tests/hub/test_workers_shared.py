"""Two hub processes over one hub folder, doing the same thing at the same moment.

What `hub serve --workers N` relies on: whatever the processes must agree on is decided in the store,
inside one write transaction that reads it afresh, never from what one process remembers. Each test
starts two real processes (``multiprocessing``, spawned: nothing inherited but the arguments), lets
them meet at a barrier, and checks that the outcome is the one a single process would give: a
station's batches applied once and in order, a token used once, the hub's own seqs and release
versions handed out once each, the nightly job run once.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub import enrolment
from hub.ingest import ingest_frame
from hub.service import Hub
from node import uplink
from sync.session import AckResult, Cursor
from tests.conftest import World

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("hub_backend")]

SPAWN = multiprocessing.get_context("spawn")
ITEM = "360802-0010"  # promised, decided at township level, villages may accept it
JOIN_S = 120


def _twice(target: Callable[..., None], *args: object) -> list[Any]:
    """Run ``target(*args, barrier, queue)`` in two processes at once; what each put on the queue."""
    barrier, queue = SPAWN.Barrier(2, timeout=30), SPAWN.Queue()
    procs = [SPAWN.Process(target=_guarded, args=(target, *args, barrier, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=JOIN_S) for _ in procs]
    for p in procs:
        p.join(JOIN_S)
    crashed = [r[1] for r in results if isinstance(r, tuple) and r and r[0] == "crashed"]
    assert not crashed, crashed[0]
    return results


def _guarded(target: Callable[..., None], *args: Any) -> None:
    """In the child: a failure is reported to the test at once, not as a queue that stays empty."""
    try:
        target(*args)
    except BaseException:
        args[-1].put(("crashed", traceback.format_exc()))
        raise


# -- in the child processes ------------------------------------------------------------------------


def _ingest_all(folder: str, frames: list[bytes], now_ms: int, barrier: Any, queue: Any) -> None:
    hub = Hub.open(Path(folder), clock=lambda: now_ms)
    barrier.wait()
    acks = [ingest_frame(hub, frame, source="test") for frame in frames]
    queue.put([(a.result.value, a.applied, a.expected_seq) for a in acks])
    hub.close()


def _redeem(folder: str, token: str, sign_pub: bytes, seal_pub: bytes, now_ms: int, barrier: Any, queue: Any) -> None:
    hub = Hub.open(Path(folder), clock=lambda: now_ms)
    barrier.wait()
    try:
        enrolment.redeem(hub, token=token, sign_pub=sign_pub, seal_pub=seal_pub)
        queue.put(("enrolled", ""))
    except enrolment.EnrolmentError as exc:
        queue.put((exc.code, str(exc)))
    hub.close()


def _stamps(folder: str, count: int, barrier: Any, queue: Any) -> None:
    hub = Hub.open(Path(folder))
    barrier.wait()
    got = []
    for _ in range(count):
        with hub.store.transaction():
            got.append(hub.next_stamp())
    queue.put(got)
    hub.close()


def _publish(folder: str, count: int, barrier: Any, queue: Any) -> None:
    hub = Hub.open(Path(folder))
    doc = json.loads(Path(folder, "catalogue.json").read_text("utf-8"))
    barrier.wait()
    queue.put([hub.publish(doc) for _ in range(count)])
    hub.close()


# -- the tests -------------------------------------------------------------------------------------


@pytest.fixture
def town(make_world: Callable[..., World]) -> World:
    return make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))


def test_a_stations_batches_received_by_two_processes_apply_once_in_order(town: World) -> None:
    village = town.get("T1-V1")
    for _ in range(8):  # eight batches, each a link of the station's chain
        town.accept(village, ITEM)
        uplink.build_outbox(village)
    frames = town.frames(village)
    assert len(frames) == 8
    folder = str(town.hub.folder)

    first, second = _twice(_ingest_all, folder, frames, town.clock())

    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        # Each link applied by exactly one of the two; the other saw it already held. No gap, no fork.
        assert sorted((a[0], b[0])) == [AckResult.APPLIED.value, AckResult.DUPLICATE.value], (i, a, b)
        applied = a if a[0] == AckResult.APPLIED.value else b
        assert applied[2] == i + 2  # applied as the next link of the chain, and no other
    assert sum(a[1] + b[1] for a, b in zip(first, second, strict=True)) == 8
    hub = Hub.open(town.hub.folder)
    try:
        assert hub.store.changes_logged("T1-V1") == 8
        assert hub.store.applications_held("T1-V1") == 8
        assert hub.store.cursor("T1-V1", 1).next_seq == 9
        assert isinstance(hub.store.cursor("T1-V1", 1), Cursor)
        assert [a for a in hub.store.alerts() if a.get("kind") in ("fork", "gap")] == []
    finally:
        hub.close()


def test_an_enrolment_token_redeemed_in_two_processes_at_once_is_used_once(world: World) -> None:
    token = world.register("T9", "township")
    results = _twice(_redeem, str(world.hub.folder), token, bytes(range(32)), bytes(range(32, 64)), world.clock())
    assert sorted(code for code, _ in results) == ["enrolled", "enrolment_refused"], results
    refusal = next(text for code, text in results if code != "enrolled")
    assert "令牌已使用过" in refusal and "ask for a new one" in refusal


def test_the_hubs_own_changes_from_two_processes_have_distinct_seqs(world: World) -> None:
    folder = world.hub.folder
    with world.hub.store.transaction():
        start_seq, _ = world.hub.next_stamp()
    first, second = _twice(_stamps, str(folder), 40)
    stamps = sorted(first + second)
    assert [seq for seq, _ in stamps] == list(range(start_seq + 1, start_seq + 81))
    hlcs = [hlc for _, hlc in stamps]
    assert hlcs == sorted(hlcs) and len(set(hlcs)) == 80  # later seq, later clock: the hub's order is one


def test_catalogue_releases_published_by_two_processes_are_numbered_without_gaps(world: World) -> None:
    folder = world.hub.folder
    first_version, _ = world.hub.catalogue()
    (folder / "catalogue.json").write_text(json.dumps(_catalogue_doc(world.hub)), "utf-8")
    first, second = _twice(_publish, str(folder), 5)
    assert sorted(first + second) == list(range(first_version + 1, first_version + 11))
    hub = Hub.open(folder)
    try:
        assert hub.catalogue()[0] == first_version + 10 == hub.published_up_to()
        assert (folder / "catalogue-published").read_text().strip() == str(first_version + 10)
    finally:
        hub.close()


def _catalogue_doc(hub: Hub) -> dict[str, object]:
    from sync.catalogue import catalogue_to_doc

    return catalogue_to_doc(hub.catalogue()[1])


def test_the_nightly_job_started_in_two_processes_at_once_runs_once(world: World) -> None:
    folder = world.hub.folder
    due = int(time.time() * 1000) - 1000
    args = [sys.executable, "-m", "hub.nightly_worker", str(folder), "scheduled", "7", str(due)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=JOIN_S) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode(errors="replace")[-2000:] for _, err in outs]
    outcomes = sorted(json.loads(out.decode().strip().splitlines()[-1])["outcome"] for out, _ in outs)
    assert outcomes[1] == "skipped" and outcomes[0] != "skipped", outcomes
    # Started again for the same slot, once the run is over: it ran already.
    again = subprocess.run(args, capture_output=True, timeout=JOIN_S, check=True)
    assert json.loads(again.stdout.decode().strip().splitlines()[-1]) == {"outcome": "skipped", "why": "done"}
    hub = Hub.open(folder)
    try:
        assert len(hub.store.recent_runs(10)) == 1
    finally:
        hub.close()
