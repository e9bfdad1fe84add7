"""Ingest at the hub, in process: real stations push real signed batches into a real hub folder.

Covers the promises of DESIGN.md "Batches and the protocol": applied exactly once, duplicates change
nothing, gaps name the expected seq, forks are kept whole with an alert, policy failures are
quarantined while the rest of the batch applies, inauthentic or misaddressed batches are rejected and
recorded; and the downstream side: feeds carry only what a station may see, catalogues never roll back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hub import enrolment, operations
from hub.ingest import FrameAck
from hub.service import Hub
from node import commands, uplink, usb_files
from node.enrolment import init_from_file
from node.station import Station
from protocol.batch import build_batch
from protocol.codec import unpack
from protocol.document import open_document
from protocol.keys import load_seal_public
from replica.errors import Refused
from replica.ids import uuid7
from sync.session import AckResult, Cursor
from tests.conftest import MINUTE_MS, SkewedClock, World

TOWNSHIP_ITEM = "360802-0010"  # promised, decided at township level, villages may accept it
DISTRICT_ITEM = "360802-0004"  # promised, decided by the district
IMMEDIATE_ITEM = "360802-0001"  # immediate, decided at township level

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


@pytest.fixture
def town(make_world: Callable[..., World]) -> World:
    """T1 with villages T1-V1 and T1-V2; T2 with village T2-V1. All enrolled."""
    return make_world(
        ("T1", "township", ""),
        ("T1-V1", "village", "T1"),
        ("T1-V2", "village", "T1"),
        ("T2", "township", ""),
        ("T2-V1", "village", "T2"),
    )


def st(world: World, code: str) -> Station:
    return world.get(code)


def own_wires(station: Station) -> list[list[object]]:
    rows = station.conn.execute(
        "SELECT origin, epoch, seq, hlc, entity, rid, fields, base FROM changes WHERE origin=? ORDER BY seq",
        (station.code,),
    ).fetchall()
    return [[o, e, s, h, ent, rid, unpack(f), unpack(b)] for o, e, s, h, ent, rid, f, b in rows]


def signed_batch(
    station: Station, changes: list[object], *, first_seq: int, prev: bytes = bytes(32), recipient: str | None = None
) -> bytes:
    """A batch validly signed with the station's own key, sealed to the hub: what a clone could send."""
    return build_batch(
        origin=station.code,
        epoch=1,
        first_seq=first_seq,
        changes=changes,
        prev=prev,
        recipient=recipient or station.hub_id,
        hlc=station.meta.int("hlc"),
        signing_key=station.keys.sign,
        seal_to=load_seal_public(station.meta.bytes("hub_seal_pub")),
    )


def snapshot(hub: Hub) -> dict[str, object]:
    """Everything ingest may write, to show that something changed nothing."""
    conn = hub.store.conn
    return {
        table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
        for table in ("records", "changes", "applications", "batches", "cursors", "quarantine", "alerts", "feed")
    }


def feed_records(hub: Hub, code: str) -> set[str]:
    """The record ids (here: application ids) whose changes are in a station's feed."""
    return {str(wire[5]) for _, wire in hub.store.feed_page(code, 0, 10_000)}


def only(acks: list[FrameAck]) -> FrameAck:
    assert len(acks) == 1, acks
    return acks[0]


# -- applied exactly once -------------------------------------------------------------------------


def test_a_villages_applications_are_applied_once_with_a_signed_receipt(town: World) -> None:
    v1 = st(town, "T1-V1")
    made = [
        town.accept(v1, TOWNSHIP_ITEM),
        town.accept(v1, DISTRICT_ITEM, deferred=["家庭收入情况声明"]),
        town.accept(v1, IMMEDIATE_ITEM),
    ]
    ack = only(town.push(v1))
    assert (ack.result, ack.applied, ack.quarantined, ack.expected_seq) == (AckResult.APPLIED, 3, 0, 4)
    hub = town.hub
    assert hub.store.applications_held("T1-V1") == 3
    assert hub.store.changes_logged("T1-V1") == 3
    assert hub.store.cursor("T1-V1", 1) == Cursor(4, ack.batch)
    for app in made:
        # The hub's merged record is the station's, cell for cell, but for the citizen's tracking code:
        # the hub keeps only its keyed hash, elsewhere, and logs "" in its place (hub/tracking.py).
        at_hub = hub.records.load("application", str(app["id"]))
        at_station = v1.records.load("application", str(app["id"]))
        assert at_station.pop("tracking").value == app["tracking_code"]
        assert at_hub.pop("tracking").value == ""
        assert at_hub == at_station
    receipt = open_document(ack.receipt, kind="receipt", recipient="T1-V1", verify_key=v1.hub_key)
    assert receipt.body["applied"] == 3 and receipt.body["batch"] == ack.batch  # type: ignore[index]
    assert v1.conn.execute("SELECT state, receipt FROM outbox").fetchall() == [("receipted", ack.receipt)]
    assert v1.pending_changes() == 0

    # The next round carries only the new change; the first batch is settled and not sent again.
    town.accept(v1, TOWNSHIP_ITEM)
    ack2 = only(town.push(v1))
    assert (ack2.result, ack2.applied) == (AckResult.APPLIED, 1)
    assert hub.store.applications_held("T1-V1") == 4
    assert hub.store.changes_logged() == 4


def test_replaying_the_same_frames_is_duplicate_and_changes_nothing(town: World) -> None:
    v1 = st(town, "T1-V1")
    town.accept(v1, TOWNSHIP_ITEM)
    uplink.build_outbox(v1)
    town.accept(v1, DISTRICT_ITEM, deferred=["家庭收入情况声明"])
    town.accept(v1, IMMEDIATE_ITEM)
    frames = town.frames(v1)
    assert len(frames) == 2
    first = town.ingest(frames)
    assert [a.result for a in first] == [AckResult.APPLIED, AckResult.APPLIED]
    before = snapshot(town.hub)
    for replay in (frames, list(reversed(frames)), frames):
        again = town.ingest(replay)
        assert {a.result for a in again} == {AckResult.DUPLICATE}
        by_hash = {a.batch: a for a in again}
        for orig in first:
            assert by_hash[orig.batch].receipt == orig.receipt  # the receipt kept the first time
            assert by_hash[orig.batch].expected_seq == 4
    assert snapshot(town.hub) == before


# -- gaps and forks --------------------------------------------------------------------------------


def test_a_batch_after_a_gap_is_answered_with_the_expected_seq(town: World) -> None:
    v1 = st(town, "T1-V1")
    town.accept(v1, TOWNSHIP_ITEM)
    town.accept(v1, TOWNSHIP_ITEM)
    uplink.build_outbox(v1)
    town.accept(v1, TOWNSHIP_ITEM)
    first, second = town.frames(v1)
    before = snapshot(town.hub)
    gap = only(town.ingest([second]))
    assert (gap.result, gap.expected_seq) == (AckResult.GAP, 1)
    assert "1" in gap.reason
    assert snapshot(town.hub) == before  # nothing taken, cursor not moved
    assert [a.result for a in town.ingest([first, second])] == [AckResult.APPLIED, AckResult.APPLIED]
    assert town.hub.store.cursor("T1-V1", 1).next_seq == 4


def test_a_fork_is_kept_whole_in_quarantine_with_an_alert(town: World) -> None:
    v1 = st(town, "T1-V1")
    app = town.accept(v1, TOWNSHIP_ITEM)
    only(town.push(v1))
    # A clone of the station, restored from an old backup, reuses seq 1 for different content.
    (wire,) = own_wires(v1)
    forged = list(wire)
    forged[6] = {**wire[6], "applicant_name": "克隆站点写的名字"}  # type: ignore[dict-item]
    frame = signed_batch(v1, [forged], first_seq=1)
    before = snapshot(town.hub)
    ack = only(town.ingest([frame]))
    assert (ack.result, ack.status, ack.expected_seq) == (AckResult.FORK, 409, 2)
    assert ack.batch and "different content" in ack.reason
    (held,) = town.hub.store.quarantined()
    assert held["origin"] == "T1-V1" and held["seq"] == 1 and bool(held["whole_batch"])
    assert str(held["reason"]).startswith("fork:")
    (alert,) = town.hub.store.alerts()
    assert alert["kind"] == "fork" and alert["station"] == "T1-V1"
    after = snapshot(town.hub)
    assert {k: v for k, v in after.items() if k not in ("quarantine", "alerts")} == {
        k: v for k, v in before.items() if k not in ("quarantine", "alerts")
    }
    assert town.hub.records.values("application", str(app["id"]))["applicant_name"] != "克隆站点写的名字"


def test_a_batch_that_does_not_chain_onto_the_last_one_is_a_fork(town: World) -> None:
    v1 = st(town, "T1-V1")
    town.accept(v1, TOWNSHIP_ITEM)
    only(town.push(v1))
    town.accept(v1, TOWNSHIP_ITEM)
    (_, wire) = own_wires(v1)
    # The right seq, but chained onto nothing: a second device holding the same keys.
    frame = signed_batch(v1, [wire], first_seq=2, prev=bytes(32))
    ack = only(town.ingest([frame]))
    assert ack.result is AckResult.FORK and "chain" in ack.reason
    assert town.hub.store.cursor("T1-V1", 1).next_seq == 2


def test_re_sending_the_same_fork_raises_one_alert_and_one_quarantine_item(town: World) -> None:
    """Regression (a bug at commit 57ed1b3, since fixed in the working tree): hub/ingest.py _ingest_verified: the FORK
    branch dedupes with `store.batch_receipt(bhash) is None`, but a forked batch is never recorded in `batches`, so
    that test is always true: every delivery of the same forked frame (a USB file imported twice, a relay or a clone
    retrying) adds another quarantine row and another 'fork' alert, although DESIGN.md says ingest is idempotent."""
    v1 = st(town, "T1-V1")
    town.accept(v1, TOWNSHIP_ITEM)
    only(town.push(v1))
    (wire,) = own_wires(v1)
    forged = list(wire)
    forged[6] = {**wire[6], "applicant_name": "克隆站点写的名字"}  # type: ignore[dict-item]
    frame = signed_batch(v1, [forged], first_seq=1)
    for _ in range(3):
        assert only(town.ingest([frame])).result is AckResult.FORK
    assert len(town.hub.store.quarantined()) == 1
    assert len(town.hub.store.alerts()) == 1


# -- policy: quarantined, never dropped, the rest applies --------------------------------------------


def test_changes_outside_the_stations_rights_are_quarantined_and_the_rest_applies(town: World) -> None:
    v1, v2 = st(town, "T1-V1"), st(town, "T1-V2")
    own = town.accept(v1, TOWNSHIP_ITEM)
    own_id = str(own["id"])
    record = v1.records.load("application", own_id)
    theirs_id = uuid7(town.clock())
    with v1.transaction():
        # A village writing the decision of a township-decided item, and deciding it.
        v1.write_unchecked("application", own_id, {"decision": "准予许可"}, {})
        v1.write_unchecked("application", own_id, {"status": "approved"}, {"status": record["status"][0]})
        # A village creating an application in its neighbour's name.
        v1.write_unchecked(
            "application",
            theirs_id,
            {
                "number": "T1-V2-20260302-09999",
                "station": "T1-V2",
                "item": TOWNSHIP_ITEM,
                "kind": "promised",
                "applicant_name": "测试申请人9999",
                "status": "accepted",
            },
            {},
        )
    later = town.accept(v1, DISTRICT_ITEM, deferred=["家庭收入情况声明"])
    ack = only(town.push(v1))
    assert (ack.result, ack.applied, ack.quarantined) == (AckResult.QUARANTINED, 2, 3)
    assert town.hub.store.cursor("T1-V1", 1).next_seq == 6  # the seqs are consumed, nothing is re-sent
    held = town.hub.store.quarantined()
    assert [h["seq"] for h in held] == [2, 3, 4]
    assert all("outside the station's rights" in str(h["reason"]) for h in held)
    assert "decision" in str(held[0]["reason"]) and "approved" in str(held[1]["reason"])
    hub_vals = town.hub.records.values("application", own_id)
    assert "decision" not in hub_vals and hub_vals["status"] == "accepted"
    assert town.hub.records.values("application", theirs_id) == {}
    assert town.hub.records.values("application", str(later["id"]))["station"] == "T1-V1"
    assert theirs_id not in feed_records(town.hub, "T1-V2")
    town.pull(v2)
    assert v2.conn.execute("SELECT COUNT(*) FROM applications").fetchone()[0] == 0
    assert v1.conn.execute("SELECT state FROM outbox").fetchall() == [("quarantined",)]


# Regression (was a strict xfail until fixed): a station cannot hand its application to another station
def test_a_station_cannot_hand_its_application_to_another_station(town: World) -> None:
    v1 = st(town, "T1-V1")
    app = town.accept(v1, TOWNSHIP_ITEM)
    only(town.push(v1))
    app_id = str(app["id"])
    with v1.transaction():
        seen = v1.records.load("application", app_id)["station"][0]
        v1.write_unchecked("application", app_id, {"station": "T2"}, {"station": seen})
    ack = only(town.push(v1))
    assert town.hub.records.values("application", app_id)["station"] == "T1-V1"
    assert app_id not in feed_records(town.hub, "T2")
    assert (ack.result, ack.quarantined) == (AckResult.QUARANTINED, 1)


# Regression (was a strict xfail until fixed): a rating outside one to five is not admitted
@pytest.mark.parametrize("score", [0, 6, 99, -5])
def test_a_rating_outside_one_to_five_is_not_admitted(town: World, score: int) -> None:
    v1 = st(town, "T1-V1")
    app = town.accept(v1, IMMEDIATE_ITEM)
    with v1.transaction():
        v1.write_unchecked("rating", uuid7(town.clock()), {"application": str(app["id"]), "score": score}, {})
    ack = only(town.push(v1))
    assert (ack.applied, ack.quarantined) == (1, 1)
    assert town.hub.store.conn.execute("SELECT COUNT(*) FROM records WHERE entity='rating'").fetchone()[0] == 0


@pytest.mark.parametrize(("ahead_min", "admitted"), [(9, True), (11, False), (24 * 60, False)])
def test_a_change_stamped_far_ahead_of_hub_time_is_quarantined(world: World, ahead_min: int, admitted: bool) -> None:
    world.station("T1", "township")
    fast = world.station("T1-V1", "village", "T1", clock=SkewedClock(world.clock, ahead_min * MINUTE_MS))
    app = world.accept(fast, TOWNSHIP_ITEM)
    ack = only(world.push(fast))
    if admitted:
        assert (ack.result, ack.applied) == (AckResult.APPLIED, 1)
        assert world.hub.records.values("application", str(app["id"]))
    else:
        assert (ack.result, ack.applied, ack.quarantined) == (AckResult.QUARANTINED, 0, 1)
        (held,) = world.hub.store.quarantined()
        assert "clock ahead" in str(held["reason"])
        assert world.hub.records.values("application", str(app["id"])) == {}
        assert world.hub.store.applications_held() == 0


# -- refused outright ---------------------------------------------------------------------------------


def test_a_revoked_stations_batch_is_rejected_recorded_and_raises_an_alert(town: World) -> None:
    """Revocation stops a key at once: REJECTED with code ``revoked`` (403), kept in the rejections,
    a ``revoked_station_sent`` alert raised, nothing else written.

    Regression (a bug at commit 57ed1b3, since fixed in the working tree): RevokedError set class attributes
    ``status``/``code`` that RemoteProtocolError.__init__ shadowed with ``default_status``/``default_code``, so
    the refusal was 'protocol_error' with status 400 and the alert was never raised."""
    v1 = st(town, "T1-V1")
    town.accept(v1, TOWNSHIP_ITEM)
    with town.hub.store.transaction():
        assert town.hub.store.revoke("T1-V1")
    before = snapshot(town.hub)
    ack = only(town.ingest(town.frames(v1)))
    assert (ack.result, ack.batch, ack.origin, ack.applied) == (AckResult.REJECTED, b"", "T1-V1", 0)
    assert (ack.reason.split(":")[0], ack.status) == ("revoked", 403)
    total, (row, *_) = town.hub.store.rejections()
    assert total == 1 and row["origin"] == "T1-V1" and str(row["reason"]).startswith("revoked:")
    assert [a["kind"] for a in town.hub.store.alerts()] == ["revoked_station_sent"]
    after = snapshot(town.hub)
    assert {k: v for k, v in after.items() if k != "alerts"} == {k: v for k, v in before.items() if k != "alerts"}


def test_a_batch_addressed_to_another_hub_is_rejected(town: World) -> None:
    v1 = st(town, "T1-V1")
    town.accept(v1, TOWNSHIP_ITEM)
    frame = signed_batch(v1, own_wires(v1), first_seq=1, recipient="360803")
    ack = only(town.ingest([frame]))
    assert ack.result is AckResult.REJECTED and ack.reason.startswith("wrong_recipient:")
    assert town.hub.store.rejections()[0] == 1
    assert town.hub.store.changes_logged() == 0 and town.hub.store.cursor("T1-V1", 1) == Cursor()


def test_a_batch_signed_with_another_stations_key_is_rejected(town: World) -> None:
    v1, v2 = st(town, "T1-V1"), st(town, "T1-V2")
    town.accept(v1, TOWNSHIP_ITEM)
    frame = build_batch(
        origin="T1-V1",
        epoch=1,
        first_seq=1,
        changes=own_wires(v1),
        prev=bytes(32),
        recipient=town.hub.hub_id,
        hlc=1,
        signing_key=v2.keys.sign,
    )
    ack = only(town.ingest([frame]))
    assert ack.result is AckResult.REJECTED and ack.reason.startswith("bad_signature:")
    assert town.hub.store.changes_logged() == 0


# -- feeds: each station sees its own scope and nothing else ---------------------------------------------


def test_feeds_carry_only_what_each_station_may_see(town: World) -> None:
    v1, v2, t1, t2, w1 = (st(town, c) for c in ("T1-V1", "T1-V2", "T1", "T2", "T2-V1"))
    a = str(town.accept(v1, TOWNSHIP_ITEM)["id"])
    b_app = town.accept(v1, DISTRICT_ITEM, deferred=["家庭收入情况声明"])
    b = str(b_app["id"])
    c = str(town.accept(v2, IMMEDIATE_ITEM)["id"])
    d = str(town.accept(w1, TOWNSHIP_ITEM)["id"])
    for s in (v1, v2, w1):
        assert only(town.push(s)).result is AckResult.APPLIED
    hub = town.hub
    # A township gets its own villages' township-decided items; nobody gets their own changes echoed.
    assert feed_records(hub, "T1") == {a, c}
    assert feed_records(hub, "T2") == {d}
    assert feed_records(hub, "T1-V1") == feed_records(hub, "T1-V2") == feed_records(hub, "T2-V1") == set()

    # The hub moves the district item on: only its station hears of it, not the township.
    operations.transition(hub, str(b_app["number"]), "under_review")
    assert feed_records(hub, "T1-V1") == {b}
    assert b not in feed_records(hub, "T1")

    # The township decides its village's item; the village hears of it, the neighbour does not.
    town.pull(t1)
    assert {r[0] for r in t1.conn.execute("SELECT id FROM applications")} == {a, c}
    number_a = t1.conn.execute("SELECT number FROM applications WHERE id=?", (a,)).fetchone()[0]
    commands.transition(t1, number_a, "under_review")
    assert only(town.push(t1)).result is AckResult.APPLIED
    assert feed_records(hub, "T1-V1") == {a, b}
    town.pull(v1)
    assert v1.records.values("application", a)["status"] == "under_review"
    assert v1.records.values("application", b)["status"] == "under_review"

    for neighbour, own in ((v2, {c}), (w1, {d}), (t2, {d})):
        town.pull(neighbour)
        held = {r[0] for r in neighbour.conn.execute("SELECT id FROM applications")}
        assert held == own, neighbour.code
        assert not ({a, b} & {r[0] for r in neighbour.conn.execute("SELECT DISTINCT rid FROM changes")})


# -- catalogue releases ----------------------------------------------------------------------------------


def test_a_station_never_goes_back_to_an_older_catalogue(town: World, tmp_path: Path) -> None:
    v1 = st(town, "T1-V1")
    old = town.hub.store.latest_release()
    assert old is not None and v1.catalogue().version == old[0] == 1
    cat_doc = open_document(old[1], kind="catalogue", recipient="*", verify_key=v1.hub_key).body
    assert isinstance(cat_doc, dict)
    assert town.hub.publish(cat_doc["catalogue"]) == 2
    result = town.pull(v1)
    assert result.catalogue == "updated" and v1.catalogue().version == 2
    with v1.transaction():
        assert v1.store_catalogue(old[1]) == (2, "rollback_refused")
    assert v1.catalogue().version == 2
    assert "比本站已有的第 2 版旧" in v1.meta.text("catalogue_warning")
    # The same refusal when the old release comes on a USB stick.
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "catalogue-1.sjd").write_bytes(old[1])
    out = usb_files.import_files(v1, [stick])
    assert out["accepted"] == 0 and "比本站已有的旧" in out["rejected"][0]["reason"]  # type: ignore[index]
    assert v1.catalogue().version == 2


def test_a_station_refuses_a_catalogue_not_signed_by_its_hub(town: World, tmp_path: Path) -> None:
    v1 = st(town, "T1-V1")
    other = Hub.create(tmp_path / "other-hub", district="360802", name="冒充的区", catalogue=None, clock=town.clock)
    try:
        forged = other.store.latest_release()
        assert forged is not None
        with pytest.raises(Refused), v1.transaction():
            v1.store_catalogue(forged[1])
    finally:
        other.close()
    assert v1.catalogue().version == 1


# -- a hub process whose view of the station tree goes stale ----------------------------------------------


def test_a_township_enrolled_by_usb_while_the_server_runs_may_decide(world: World, tmp_path: Path) -> None:
    """Regression (a bug at commit 57ed1b3, since fixed in the working tree): hub/service.py Hub.tiers(): the
    station->tier map is cached per Hub object and only the object that registers/enrols a station calls
    forget_tiers(). A station enrolled by USB claim through another process (`sanji hub import` while `sanji hub
    serve` runs) stays unknown to the server, whose ingest then treats it as tier 'field' (sync.model AUTHORITY 0,
    no decider role): a township's decisions are quarantined as 'outside the station's rights' until the server
    restarts."""
    root = tmp_path
    server = world.hub  # the long-running `hub serve` process
    world.station("T1", "township")
    v1 = world.station("T1-V1", "village", "T1")
    world.accept(v1, TOWNSHIP_ITEM)
    only(world.push(v1))  # the server has now looked up the station tree once

    cli = Hub.open(server.folder, clock=world.clock)  # `sanji hub enroll` / `sanji hub import`
    try:
        tokens = {
            "T3": enrolment.register(cli, station="T3", name="三镇", tier="township"),
            "T3-V1": enrolment.register(cli, station="T3-V1", name="三镇一村", tier="village", parent="T3"),
        }
        stations: dict[str, Station] = {}
        for code, token in tokens.items():
            (root / f"{code}.sje").write_bytes(enrolment.enrolment_file(cli, code, token))
            init_from_file(root / code, root / f"{code}.sje", token=token)
            stations[code] = Station(root / code, clock=world.clock)
            world.stations.append(stations[code])
            enrolment.accept_claim(cli, uplink.claim_file(stations[code]))
    finally:
        cli.close()

    village, township = stations["T3-V1"], stations["T3"]
    world.accept(village, TOWNSHIP_ITEM)
    assert only(world.push(village)).result is AckResult.APPLIED
    world.pull(township)
    (number,) = township.conn.execute("SELECT number FROM applications").fetchone()
    commands.transition(township, number, "under_review")
    ack = only(world.push(township))
    assert (ack.result, ack.quarantined) == (AckResult.APPLIED, 0), [q["reason"] for q in world.hub.store.quarantined()]
