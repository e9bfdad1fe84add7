"""The hub opens what a sealing station sealed to it (issue 16, ``hub/sealed_changes.py``), and holds
back, with its reason, every change whose seal does not open, whose masks do not match its seal, or
whose sealed values come without a seal: authentic changes that cannot be applied are quarantined,
never dropped, and the rest of the batch still applies. Applicants are generated."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from node import commands, uplink
from node.station import Station
from protocol.codec import pack
from protocol.hub_seal import seal_values
from protocol.keys import load_seal_public
from tests.conftest import World
from tests.node.staff_helpers import STAFF_PASSWORD, sign_in, with_staff

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"
ITEM = "360802-0009"
CARD = "银行卡"

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


@pytest.fixture
def village(world: World) -> Iterator[Station]:
    world.clock.ms = int(time.time() * 1000)
    world.station(TOWNSHIP, "township")
    st = world.station(VILLAGE, "village", TOWNSHIP)
    with_staff(st.db, VILLAGE)
    st.session = sign_in(st.db, "zhangsan", STAFF_PASSWORD, now_ms=st.clock(), code=VILLAGE)
    yield st


def _accept_two(world: World, st: Station) -> tuple[str, str]:
    a = commands.accept(st, world.application(ITEM, st=st, deferred=[CARD]), author="zhangsan")
    b = commands.accept(st, world.application(ITEM, st=st, deferred=[CARD]), author="zhangsan")
    return str(a["id"]), str(b["id"])


def _quarantined(world: World) -> list[tuple[str, str]]:
    rows = world.hub.store.conn.execute("SELECT code, reason FROM quarantine ORDER BY id").fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def _tamper(st: Station, rec_id: str, seal: bytes | None) -> None:
    with st.transaction():
        st.conn.execute("UPDATE changes SET hub_seal=? WHERE rid=? AND entity='application'", (seal, rec_id))


def test_a_sealing_station_s_changes_arrive_as_plaintext(world: World, village: Station) -> None:
    first, _second = _accept_two(world, village)
    sealed = village.conn.execute("SELECT hub_seal, digest FROM changes WHERE rid=?", (first,)).fetchone()
    assert sealed[0] and sealed[1]
    world.push(village)
    assert _quarantined(world) == []
    held = world.hub.records.values("application", first)
    mine = village.shown_values("application", first)  # opened through the session
    assert held["applicant_id"] == mine["applicant_id"] and isinstance(held["applicant_id"], str)
    assert len(str(held["applicant_id"])) == 18


@pytest.mark.parametrize("how", ["garbled", "other_record", "no_seal", "mask_mismatch"])
def test_a_seal_that_does_not_open_or_match_is_quarantined_with_its_reason(
    world: World, village: Station, how: str
) -> None:
    first, second = _accept_two(world, village)
    pub = load_seal_public(village.meta.bytes("hub_seal_pub"))
    key = village.meta.text("hub_seal_key_id")
    if how == "garbled":
        _tamper(village, first, pack([key, b"\x00" * 80]))
    elif how == "other_record":  # a genuine seal, but of another application
        other = village.conn.execute("SELECT hub_seal FROM changes WHERE rid=?", (second,)).fetchone()[0]
        _tamper(village, first, bytes(other))
    elif how == "no_seal":
        _tamper(village, first, None)
    else:  # opens, but the phone in it is not the one whose mask the change carries
        wrong = {"applicant_phone": "13812345678"}
        _tamper(village, first, pack(seal_values(wrong, pub, key, origin=VILLAGE, entity="application", rec_id=first)))
    world.push(village)
    held = _quarantined(world)
    assert [code for code, _ in held] == ["hub_seal"]
    assert "区局" in held[0][1] and "暂存" in held[0][1]
    assert world.hub.records.values("application", first) == {}  # not applied ...
    assert world.hub.records.values("application", second)["status"] == "accepted"  # ... the rest is
    assert uplink.unsettled(village) == []  # the batch was answered: nothing is lost at the station either
