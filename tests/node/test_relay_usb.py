"""A village whose only path is a stick carried to its township gets the hub's decisions back that way
(issue 17): its status file, hours old when the township's round carries it, is answered by the hub as
``hub export`` would be, not refused as a stale online pull; its page comes back on the stick."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hub import enrolment, keyring, operations
from node import commands, relay_cargo, uplink, usb_files
from node.enrolment import init_from_file
from node.relay_queue import RelayQueue
from node.station import Station
from tests.conftest import World
from tests.node.test_relay import TOWNSHIP, V1, Relayed, relay_world

HOUR_MS = 3_600_000


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


async def stick_round(r: Relayed, monkeypatch: pytest.MonkeyPatch, hours_ago: int, name: str) -> list[str]:
    """The village exports (its clock ``hours_ago`` behind: the stick sat that long), the township takes
    the stick and syncs, and writes what the hub sent back for the village; the village imports it."""
    st, stick = r.v1, r.world.root / f"{name}-up"
    now = st.clock
    with monkeypatch.context() as m:
        m.setattr(st, "clock", lambda: now() - hours_ago * HOUR_MS)
        usb_files.export(st, stick)
    taken = usb_files.import_files(r.township, [stick])
    assert taken["rejected"] == [] and {t["kind"] for t in taken["relayed"]} >= {"pull"}, taken
    done = await r.forward()
    assert done.errors == [] and done.pulls == 1, done  # answered, not refused as stale
    back = r.world.root / f"{name}-down"
    written = relay_cargo.export_for(r.township, V1, back)
    got = usb_files.import_files(st, [back])
    assert got["rejected"] == [], got
    return [str(f) for f in written["files"]]


async def test_a_usb_only_village_gets_its_decisions_through_the_township(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = relayed.accept(relayed.v1)
    first = await stick_round(relayed, monkeypatch, 3, "first")
    assert relayed.hub_count(number) == 1 and any("_feed_" in f for f in first), first
    assert relayed.v1.pending_changes() == 0

    operations.transition(relayed.world.hub, number, "completed")  # the hub decides
    second = await stick_round(relayed, monkeypatch, 2, "second")
    assert any("_feed_" in f for f in second), second
    mine = {a["number"]: a["status"] for a in commands.applications(relayed.v1)}
    assert mine == {number: "completed"}, mine


async def test_an_online_pull_left_at_the_relay_still_goes_stale(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a stick's status (no nonce) is answered late: a relayed online pull older than 15 minutes
    is dropped, and the village leaves a fresh one next round."""
    st = relayed.v1
    now = st.clock
    monkeypatch.setattr(st, "clock", lambda: now() - HOUR_MS)
    await relayed.village_round(st)
    monkeypatch.undo()
    done = await relayed.forward()
    assert done.pulls == 0 and any("pull HTTP 4" in e for e in done.errors), done


async def test_receipts_waiting_at_the_township_survive_the_villages_next_stick(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The township wrote the village's stick back before its round with the hub had answered; the
    receipts came after. On the next trip the stick carries the same batches again (still unsettled):
    taking them as cargo must not take away the receipts waiting for that village (the simulator's
    USB trips found them handed over to nobody, so the village never settled by stick)."""
    st = relayed.v1
    number = relayed.accept(st)
    stick = relayed.world.root / "trip1-up"
    usb_files.export(st, stick)
    usb_files.import_files(relayed.township, [stick])
    assert relay_cargo.export_for(relayed.township, V1, relayed.world.root / "trip1-down")["files"] == []
    done = await relayed.forward()  # the hub answers after the stick went home
    assert done.errors == [] and relayed.hub_count(number) == 1, done

    back = await stick_round(relayed, monkeypatch, 0, "trip2")  # the same batches on the stick again

    assert any("_receipts_" in f for f in back), back
    assert st.pending_changes() == 0


async def test_a_village_by_stick_follows_the_hubs_key_rotation_through_the_township(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's USB trips (seed 210): after `hub rotate-key`, a village whose only path is a stick
    to its township could verify none of the receipts and pages written for it, for good: export --for
    wrote no key history. It writes the one the township keeps, first, as `hub export` does."""
    st = relayed.v1
    before = st.meta.int("hub_keys_version")
    version = int(str(keyring.rotate_key(relayed.world.hub)["version"]))
    number = relayed.accept(st)

    first = await stick_round(relayed, monkeypatch, 1, "rotated1")
    await stick_round(relayed, monkeypatch, 0, "rotated2")

    assert any(f.endswith(f"_keys_v{version:04d}.sjk") for f in first), first
    assert st.meta.int("hub_keys_version") == version > before
    assert st.pending_changes() == 0 and relayed.hub_count(number) == 1


async def test_an_offline_enrolled_villages_claim_rides_the_township_to_the_hub(relayed: Relayed) -> None:
    """Issue 17: the claim of a village enrolled from a file is relay cargo, forwarded ahead of its
    batches through the hub's claim route, which checks it as `hub import` does; a claim that does not
    match an open token is refused with the same reason, in the township's output."""
    world, code = relayed.world, f"{TOWNSHIP}-03"
    token = enrolment.register(world.hub, station=code, name="离线村", tier="village", parent=TOWNSHIP)
    (world.root / "v3.sje").write_bytes(enrolment.enrolment_file(world.hub, code, token))
    init_from_file(world.root / code, world.root / "v3.sje", token=token)
    st = Station(world.root / code)
    world.stations.append(st)
    number = relayed.accept(st)
    stick = world.root / "v3-up"
    usb_files.export(st, stick)
    taken = usb_files.import_files(relayed.township, [stick])
    assert [r["village"] for r in taken["relayed"] if r.get("kind") == "claim"] == [code], taken
    assert taken["claims_for_hub"] == []

    done = await relayed.forward()
    assert done.claims == [code] and done.errors == [] and done.batches >= 1, done
    assert relayed.hub_count(number) == 1  # its batches accepted: the hub knew its keys first

    # The hub's signed receipt, home on the stick, tells the village the hub holds its keys: `enrolled`
    # turns true, and its next stick carries no claim (it did on every export before).
    assert st.meta.get("enrolled") is False
    usb_files.import_files(
        st, [Path(f) for f in relay_cargo.export_for(relayed.township, code, world.root / "v3-down")["files"]]
    )
    assert st.meta.get("enrolled") is True and st.pending_changes() == 0
    assert not any(f.endswith("_claim.sjc") for f in usb_files.export(st, world.root / "v3-again")["files"])

    forged = uplink.claim_file(st).replace(st.keys.sign_pub, bytes(32))
    (stick / f"{code}_claim.sjc").write_bytes(forged)
    usb_files.import_files(relayed.township, [stick / f"{code}_claim.sjc"])
    refused = await relayed.forward()
    assert refused.claims == [] and len(refused.errors) == 1, refused
    assert f"下辖村 {code} 的接入确认文件被区局拒收（HTTP 403）" in refused.errors[0]
    assert "does not match an open, unexpired enrolment token" in refused.errors[0]
    queue = RelayQueue(relayed.township.folder, TOWNSHIP)
    try:
        assert queue.waiting_pull(code, "claim") is None  # answered: not carried again
    finally:
        queue.close()
