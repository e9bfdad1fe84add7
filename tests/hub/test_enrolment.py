"""Enrolment at the hub: one-time expiring tokens scoped to a station, claims carried by hand,
revocation lifted only by re-enrolment with new keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import enrolment
from hub.ingest import ingest_frame
from node import uplink
from node.enrolment import _pin, init_from_file
from node.station import Station
from protocol.errors import RemoteProtocolError
from replica.errors import Refused
from sync.session import AckResult
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

ITEM = "360802-0010"


@pytest.mark.parametrize(
    ("code", "tier", "parent", "why"),
    [
        ("T9", "district", "", "这个层级"),
        ("T9", "province", "", "这个层级"),
        ("T1-V9", "village", "", "须用 --parent"),
        ("T1-V9", "community", "", "须用 --parent"),
        ("T1-V9", "village", "T404", "还没有登记"),
        ("T1-V9", "village", "T1-V1", "只有乡镇或街道可以作为上级"),
        ("", "township", "", "不能用"),
        ("360802", "township", "", "不能用"),  # the hub's own id
        ("T" * 65, "township", "", "不能用"),
    ],
)
def test_register_refuses_what_cannot_be_a_station(world: World, code: str, tier: str, parent: str, why: str) -> None:
    world.register("T1", "township")
    world.register("T1-V1", "village", "T1")
    before = [s.code for s in world.hub.store.stations()]
    with pytest.raises(Refused, match=why):
        world.register(code, tier, parent)
    assert [s.code for s in world.hub.store.stations()] == before


@pytest.mark.parametrize("code", ["T1 V1", "T1_V1", "一村", "T1.V1"], ids=["space", "underscore", "hanzi", "dot"])
def test_register_refuses_codes_that_cannot_name_batches_or_numbers(world: World, code: str) -> None:
    """Regression (a bug at commit 57ed1b3, since fixed in the working tree): hub/enrolment.py register(): a station
    code is only checked with str.isprintable() and len<=64, but it must also be a batch origin
    (protocol.batch.is_origin: [A-Za-z0-9.-], alphanumeric first) and fit sync.numbering's station pattern
    ([A-Za-z0-9]+ joined by '-'). Codes such as 'T1 V1', 'T1_V1', '一村' or 'T1.V1' are registered and issued a token,
    yet such a station can never number an application (application_number raises ValueError, not Refused) or build
    a batch (LocalProtocolError)."""
    world.register("T1", "township")
    with pytest.raises(Refused):
        world.register(code, "village", "T1")


def test_a_token_pins_the_stations_own_keys_once(world: World, tmp_path: Path) -> None:
    world.station("T1", "township")
    token = world.register("T1-V1", "village", "T1")
    st = Station(tmp_path / "v1", clock=world.clock, create=True)
    try:
        answer = enrolment.redeem(world.hub, token=token, sign_pub=st.keys.sign_pub, seal_pub=st.keys.seal_pub)
        assert _pin(st, answer, token, "", online=True) == {
            "station": "T1-V1",
            "tier": "village",
            "catalogue_version": 1,
        }
        pinned = world.hub.store.station("T1-V1")
        assert pinned is not None and (pinned.sign_pub, pinned.seal_pub) == (st.keys.sign_pub, st.keys.seal_pub)
        with pytest.raises(RemoteProtocolError, match="already been used"):
            enrolment.redeem(world.hub, token=token, sign_pub=bytes(32), seal_pub=bytes(32))
        assert world.hub.store.station("T1-V1").sign_pub == st.keys.sign_pub  # type: ignore[union-attr]
    finally:
        st.close()


def test_an_answer_made_with_another_token_is_not_trusted(world: World, tmp_path: Path) -> None:
    world.station("T1", "township")
    token = world.register("T1-V1", "village", "T1")
    st = Station(tmp_path / "v1", clock=world.clock, create=True)
    try:
        answer = enrolment.redeem(world.hub, token=token, sign_pub=st.keys.sign_pub, seal_pub=st.keys.seal_pub)
        other = world.register("T1-V2", "village", "T1")  # a genuine token of the same hub, for another station
        with pytest.raises(Refused, match="not made with this token"):
            _pin(st, answer, other, "", online=True)
        assert st.meta.text("hub_id") == ""
    finally:
        st.close()


def test_an_expired_or_unknown_token_is_refused_and_stays_unused(world: World) -> None:
    world.register("T1", "township")
    token = enrolment.register(world.hub, station="T1-V1", name="一村", tier="village", parent="T1", ttl_ms=1000)
    world.clock.advance(1001)
    with pytest.raises(RemoteProtocolError, match="expired"):
        enrolment.redeem(world.hub, token=token, sign_pub=bytes(32), seal_pub=bytes(32))
    with pytest.raises(RemoteProtocolError, match="unknown enrolment token"):
        enrolment.redeem(world.hub, token="SJT-made-up", sign_pub=bytes(32), seal_pub=bytes(32))
    st = world.hub.store.station("T1-V1")
    assert st is not None and st.sign_pub is None
    assert [used for _, _, used in world.hub.store.tokens_for("T1-V1")] == [None]


def test_re_enrolment_after_revocation_issues_new_keys(world: World, tmp_path: Path) -> None:
    world.station("T1", "township")
    old = world.station("T1-V1", "village", "T1")
    world.accept(old, ITEM)
    stale_frames = world.frames(old)
    with world.hub.store.transaction():
        world.hub.store.revoke("T1-V1")
    token = world.register("T1-V1", "village", "T1")
    new = Station(tmp_path / "v1-new", clock=world.clock, create=True)
    world.stations.append(new)
    answer = enrolment.redeem(world.hub, token=token, sign_pub=new.keys.sign_pub, seal_pub=new.keys.seal_pub)
    _pin(new, answer, token, "", online=True)
    assert world.hub.store.station("T1-V1").revoked is False  # type: ignore[union-attr]
    # The old keys stay dead: what the old machine signed is refused, not applied.
    ack = ingest_frame(world.hub, stale_frames[0], source="test")
    assert ack.result is AckResult.REJECTED and ack.reason.startswith("bad_signature")
    world.accept(new, ITEM)
    assert [a.result for a in world.push(new)] == [AckResult.APPLIED]


def test_a_claim_carried_by_hand_pins_keys_once(world: World, tmp_path: Path) -> None:
    world.station("T1", "township")
    token = world.register("T1-V1", "village", "T1")
    (tmp_path / "v1.sje").write_bytes(enrolment.enrolment_file(world.hub, "T1-V1", token))
    init_from_file(tmp_path / "v1", tmp_path / "v1.sje", token=token)  # the file alone carries no token
    st = Station(tmp_path / "v1", clock=world.clock)
    world.stations.append(st)
    assert st.meta.get("enrolled") is False and st.catalogue().version == 1
    world.accept(st, ITEM)
    # Before the claim reaches the hub, the station's batches are refused (its keys are unknown) ...
    assert ingest_frame(world.hub, world.frames(st)[0], source="test").result is AckResult.REJECTED
    claim = uplink.claim_file(st)
    assert enrolment.accept_claim(world.hub, claim) == "T1-V1"
    assert enrolment.accept_claim(world.hub, claim) == "T1-V1"  # the same stick twice changes nothing
    # ... and accepted after it.
    assert [a.result for a in world.push(st)] == [AckResult.APPLIED]
    # A claim whose proof was not made with an open token is refused.
    forged = uplink.claim_file(st).replace(st.keys.sign_pub, bytes(32))
    with pytest.raises(RemoteProtocolError, match="does not match"):
        enrolment.accept_claim(world.hub, forged)


# Regression (was a strict xfail until fixed): a superseded token cannot take over an enrolled station
def test_a_superseded_token_cannot_take_over_an_enrolled_station(world: World, tmp_path: Path) -> None:
    world.station("T1", "township")
    lost = world.register("T1-V1", "village", "T1")  # sent to the wrong person; the operator issues another
    token = world.register("T1-V1", "village", "T1")
    real = Station(tmp_path / "real", clock=world.clock, create=True)
    world.stations.append(real)
    _pin(
        real,
        enrolment.redeem(world.hub, token=token, sign_pub=real.keys.sign_pub, seal_pub=real.keys.seal_pub),
        token,
        "",
        online=True,
    )
    with pytest.raises(RemoteProtocolError):
        enrolment.redeem(world.hub, token=lost, sign_pub=bytes(range(32)), seal_pub=bytes(range(32)))
    assert world.hub.store.station("T1-V1").sign_pub == real.keys.sign_pub  # type: ignore[union-attr]
