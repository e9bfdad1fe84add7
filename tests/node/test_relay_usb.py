"""A village whose only path is a stick carried to its township gets the hub's decisions back that way
(issue 17): its status file, hours old when the township's round carries it, is answered by the hub as
``hub export`` would be, not refused as a stale online pull; its page comes back on the stick."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hub import enrolment, keyring, operations
from node import commands, relay_alert, relay_cargo, uplink, usb_files
from node.enrolment import init_from_file
from node.relay_queue import RelayQueue, now_ms
from node.station import Station
from protocol.frame import peek_header
from sanji.cli import main as sanji
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


async def test_a_stick_answer_collected_over_the_relay_is_applied_and_blames_nobody(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new-user walk of issue 17: a village enrolled with --relay carries a stick to its township
    once, then pulls through the relay over the network. The hub's answer to the stick status (a page
    with no nonce) waits at the township with nothing else; the village collected it with its own
    pull and took it for a replay, naming an honest relay and pausing it for 24 hours. It is the page
    `export --for` would have written on the stick: applied like one, nobody blamed."""
    st = relayed.v1
    number = relayed.accept(st)
    await stick_round(relayed, monkeypatch, 1, "walk1")  # the application reaches the hub by stick
    operations.transition(relayed.world.hub, number, "completed")  # the hub decides

    usb_files.export(st, relayed.world.root / "walk2-up")  # node export V --out s5
    usb_files.import_files(relayed.township, [relayed.world.root / "walk2-up"])  # node import T s5
    done = await relayed.forward()  # node sync T: the stick status answered from the village's cursor
    assert done.errors == [] and done.pulls == 1, done
    with relayed.queue() as conn:
        carried = bytes(conn.execute("SELECT data FROM relay_frames WHERE kind='feed'").fetchone()[0])
    assert "nonce" not in peek_header(carried)

    rnd = await relayed.village_round(st)  # node sync V: over the network, through the relay

    assert rnd.misdeeds == [] and rnd.problems == [], rnd
    assert relay_alert.current(st) is None
    assert {a["number"]: a["status"] for a in commands.applications(st)} == {number: "completed"}

    # The relay hands the same stick answer again: the hub's, and old: harmless, as on a stick.
    cursor = st.meta.int("feed_cursor")
    RelayQueue(relayed.township.folder, TOWNSHIP).answered(V1, [], "feed", carried, now_ms())
    again = await relayed.village_round(st)
    assert again.misdeeds == [] and st.meta.int("feed_cursor") == cursor, again

    # Cut short, it is no longer the hub's: refused, and the relay named for it.
    RelayQueue(relayed.township.folder, TOWNSHIP).answered(V1, [], "feed", carried[:-40], now_ms())
    cut = await relayed.village_round(st)
    assert [m for m, _ in cut.misdeeds] == ["bad_page"] and st.meta.int("feed_cursor") == cursor, cut


async def test_a_replayed_page_that_answered_a_request_is_still_named(relayed: Relayed) -> None:
    """Only a page with no nonce is taken as a stick answer: one answering a request of ours already
    answered is a replay, as before."""
    st = relayed.v1
    relayed.accept(st)
    await relayed.village_round(st)
    await relayed.forward()
    with relayed.queue() as conn:
        page = bytes(conn.execute("SELECT data FROM relay_frames WHERE kind='feed'").fetchone()[0])
    assert peek_header(page).get("nonce")
    await relayed.village_round(st)
    RelayQueue(relayed.township.folder, TOWNSHIP).answered(V1, [], "feed", page, now_ms())

    rnd = await relayed.village_round(st)

    assert [m for m, _ in rnd.misdeeds] == ["replayed_page"], rnd
    assert relay_alert.paused(st) is not None


def relay_reset(folder: Path) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = sanji(["node", "relay-reset", str(folder), "--json"])
    return code or 0, json.loads(out.getvalue())


def test_relay_reset_lifts_the_pause_and_keeps_the_report_the_hub_has_not_heard(relayed: Relayed) -> None:
    """After a false alarm staff lift the 24-hour pause at once. A report the hub has not heard yet
    still goes (the hub judges); one already reported is cleared whole."""
    folder = relayed.v1.folder
    assert relay_reset(folder) == (0, {"station": V1, "cleared": None})

    relay_alert.record(relayed.v1, "replayed_page", relayed.relay_url, "test")
    assert relay_alert.paused(relayed.v1) is not None
    code, out = relay_reset(folder)
    assert code == 0 and out["station"] == V1, out
    assert out["cleared"] == {
        "relay": TOWNSHIP,
        "url": relayed.relay_url,
        "problem": "replayed_page",
        "detail": "test",
        "reported": False,
    }
    st = Station(folder)
    try:
        assert relay_alert.paused(st) is None
        kept = relay_alert.to_report(st)  # still carried by the next pull request
        assert kept is not None and kept["problem"] == "replayed_page"
        assert "已确认误报" in relay_alert.words(kept)

        relay_alert.record(st, "bad_page", relayed.relay_url, "again")
        with st.transaction():
            st.meta.set("relay_alert", {**relay_alert.current(st), "reported_ms": st.clock()})  # type: ignore[dict-item]
    finally:
        st.close()
    code, out = relay_reset(folder)
    assert code == 0 and out["cleared"]["reported"] is True  # type: ignore[index]
    st = Station(folder)
    try:
        assert relay_alert.current(st) is None
    finally:
        st.close()


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
