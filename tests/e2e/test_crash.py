"""Crash safety with real processes: SIGKILL in the middle of a large push, then recover by syncing.

A station back-enters a few thousand applications (`sanji node accept --from`) and sends them to the
hub, over HTTP (`sanji node sync`) or on a USB stick (`sanji hub import`), and the process doing the
hub's side is SIGKILLed while it ingests them. After a restart and another sync (or import) the hub
must hold exactly the station's applications, none missing and none twice, and its database must
pass its check (SQLite's quick check; on PostgreSQL, the database answering with the hub in it).
It runs on both backends: on PostgreSQL the killed process is the hub, never the database server.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.applicants import People

from .conftest import TOWNSHIP, Hub, HubServer, Node, application_lines, init_online
from .processes import ok, run_sanji, start_sanji, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("hub_backend")]  # on SQLite and on PostgreSQL

BACKLOG = 3000  # more than one batch (a batch holds at most 2000 changes), so a push spans transactions
SYNC_TIMEOUT = 120.0


def back_entered_node(hub: Hub, tmp_path: Path, people: People, code: str) -> Node:
    """A village enrolled online (the hub must be serving) that has back-entered BACKLOG applications."""
    node = init_online(hub, tmp_path / f"node-{code}", code)
    lines = tmp_path / f"register-{code}.jsonl"
    lines.write_text("\n".join(application_lines(people, BACKLOG)) + "\n", encoding="utf-8")
    out = ok("node", "accept", node.dir, "--from", lines, timeout=SYNC_TIMEOUT)
    assert out["refused"] == [], out["refused"][:5]
    assert out["accepted"] == BACKLOG
    return node


def sync_and_kill_hub_mid_push(hub: Hub, node: Node, server: HubServer) -> tuple[bool, int, str]:
    """Start `node sync`, wait until the hub has committed part of the push, SIGKILL the hub.

    Returns (killed mid-push, the sync's exit code, its stderr). "Mid-push" means the hub had committed
    some but not all of the backlog when the kill landed: the push's single HTTP request was still
    being answered, so the station had received no acknowledgement at all.
    """
    proc = start_sanji("node", "sync", node.dir)
    killed_mid = False
    seen = 0
    try:
        deadline = time.monotonic() + SYNC_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            seen = hub.count_readonly(f"SELECT COUNT(*) FROM applications WHERE station='{node.code}'")
            if 0 < seen < BACKLOG:
                server.kill()
                killed_mid = True
                break
            time.sleep(0.005)
        if not killed_mid:
            server.kill()  # too late to land mid-push; still a crash the hub must survive
        try:
            _, err = proc.communicate(timeout=SYNC_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        return killed_mid, proc.returncode, err.decode("utf-8", "replace")
    finally:
        stop_process(proc)


def converge(node: Node, rounds: int = 3) -> None:
    for _ in range(rounds):
        res = node.sync(timeout=SYNC_TIMEOUT)
        assert res.code == 0, f"sync after the crash exited {res.code}: {res.stderr.strip()}"
        if res.data["pending"] == 0:
            return
    pytest.fail(f"{node.code} still has pending changes after {rounds} sync rounds: {node.status()}")


def assert_exactly_once(hub: Hub, node: Node) -> None:
    node_numbers = node.numbers()
    hub_numbers = hub.numbers(node.code)
    assert len(node_numbers) == BACKLOG == len(set(node_numbers))
    dupes = sorted(n for n, k in Counter(hub_numbers).items() if k > 1)
    assert not dupes, f"{len(dupes)} application(s) twice at the hub, e.g. {dupes[:3]}"
    missing = sorted(set(node_numbers) - set(hub_numbers))
    extra = sorted(set(hub_numbers) - set(node_numbers))
    assert not missing, f"{len(missing)} application(s) never reached the hub, e.g. {missing[:3]}"
    assert not extra, f"{len(extra)} application(s) at the hub that the station does not hold, e.g. {extra[:3]}"
    assert len(hub_numbers) == BACKLOG
    status = hub.status()
    assert status["quarantined"] == 0 and status["conflicts"] == 0, status


def test_hub_killed_mid_push_then_resync_converges(hub: Hub, tmp_path: Path, people: People) -> None:
    hub.enroll(TOWNSHIP, tier="township")
    with hub.serving() as server:
        node = back_entered_node(hub, tmp_path, people, f"{TOWNSHIP}-31")
        assert node.status()["pending"] >= BACKLOG
        killed_mid, code, err = sync_and_kill_hub_mid_push(hub, node, server)
        assert not server.running

    assert code in (0, 3), f"sync exited {code} when the hub died: {err.strip()}"
    assert killed_mid, "the kill should land while the hub was ingesting the push"
    assert code == 3, f"the hub died before answering, so the hub was unreachable: exit {code}, {err.strip()}"
    assert "连不上区局" in err and "条变更已保存在本站" in err
    assert node.status()["pending"] > 0, "unacknowledged work must stay queued at the station"
    assert hub.store_check() == "ok"
    held = hub.count_readonly(f"SELECT COUNT(*) FROM applications WHERE station='{node.code}'")
    assert held > 0, "what the hub had committed before the kill must survive it"

    with hub.serving():
        converge(node)
        assert_exactly_once(hub, node)
    assert hub.store_check() == "ok"


def test_hub_import_killed_mid_stick_then_reimport_converges(hub: Hub, tmp_path: Path, people: People) -> None:
    """The same crash on the hand-carried path: `sanji hub import` dies while ingesting a USB stick."""
    hub.enroll(TOWNSHIP, tier="township")
    code = f"{TOWNSHIP}-33"
    enrolment = tmp_path / "enrolment.sje"
    token = hub.enroll(code, tier="village", parent=TOWNSHIP, out=enrolment)  # the slip: file and token
    node = Node(tmp_path / "node", code)
    ok("node", "init", node.dir, "--enrollment", enrolment, "--token", token)
    lines = tmp_path / "register.jsonl"
    lines.write_text("\n".join(application_lines(people, BACKLOG)) + "\n", encoding="utf-8")
    assert ok("node", "accept", node.dir, "--from", lines, timeout=SYNC_TIMEOUT)["accepted"] == BACKLOG
    usb = tmp_path / "usb"
    files = ok("node", "export", node.dir, "--out", usb, timeout=SYNC_TIMEOUT)["files"]
    assert len([f for f in files if f.endswith(".sjb")]) >= 2, "the backlog should span several batch files"

    proc = start_sanji("hub", "import", hub.dir, usb)
    killed_mid = False
    try:
        deadline = time.monotonic() + SYNC_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if 0 < hub.count_readonly() < BACKLOG:
                proc.kill()
                killed_mid = True
                break
            time.sleep(0.005)
        proc.wait(timeout=SYNC_TIMEOUT)
    finally:
        stop_process(proc)
    assert killed_mid, "the kill should land while the import was ingesting the stick"
    assert hub.store_check() == "ok"
    assert hub.count_readonly() > 0, "batches committed before the kill must survive it"

    res = run_sanji("hub", "import", hub.dir, usb, timeout=SYNC_TIMEOUT)
    assert res.code == 0, f"re-import exited {res.code}: {res.stderr.strip()} {res.data}"
    assert res.data["rejected"] == [] and res.data["accepted"] >= 1 and res.data["duplicates"] >= 1, res.data
    assert_exactly_once(hub, node)
