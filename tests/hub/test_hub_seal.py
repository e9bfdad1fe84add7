"""The hub opens what a sealing station sealed to it (issue 16, ``hub/sealed_changes.py``), and holds
back, with its reason, every change whose seal does not open, whose masks do not match its seal, or
whose sealed values come without a seal: authentic changes that cannot be applied are quarantined,
never dropped, and the rest of the batch still applies. After a rotation of the hub's sealing key, what
stations sealed to the old one still opens (``hub/seal_keys.py``), and a change held for its seal is
released through the same seal opening and admission question as ingest
(``hub/quarantine_review.py``). Applicants are generated."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from hub import keyring, quarantine_review, seal_keys
from node import commands, hubkeys, uplink
from node.station import Station
from protocol.codec import pack, unpack
from protocol.hub_seal import seal_values
from protocol.keys import key_id, load_seal_public, private_bytes, public_bytes
from replica.errors import Refused
from sanji.cli import main as sanji
from sync import sealed_value
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


# -- a sealing-key rotation, and releasing what was held for its seal -----------------------------------


def _hub_seal_key(st: Station, rec_id: str) -> str:
    row = st.conn.execute("SELECT hub_seal FROM changes WHERE rid=? AND entity='application'", (rec_id,)).fetchone()
    return str(unpack(bytes(row[0]))[0])  # type: ignore[index]


def test_changes_sealed_before_a_sealing_key_rotation_are_applied_after_it(
    world: World, village: Station, hub_backend: str
) -> None:
    hub = world.hub
    old_key = hub.keys.seal_key_id
    built, _ = _accept_two(world, village)
    world.frames(village)  # batched before the rotation: the body is sealed to the old key as well
    out = keyring.rotate_key(hub, seal=True)
    assert out["seal_key_id"] == hub.keys.seal_key_id != old_key
    retired = hub.folder / seal_keys.RETIRED_FILE
    assert retired.stat().st_mode & 0o777 == 0o600
    written, _ = _accept_two(world, village)  # sealed to the old key: the station has not followed yet
    hubkeys.adopt(village, keyring.bundle(hub))  # the next round follows the key list ...
    after, _ = _accept_two(world, village)  # ... and seals to the new key from then on
    assert [_hub_seal_key(village, i) for i in (built, written, after)] == [old_key, old_key, hub.keys.seal_key_id]

    acks = world.push(village)
    assert [a.result.value for a in acks] == ["applied"] * len(acks) and _quarantined(world) == []
    for rec_id in (built, written, after):
        assert (
            hub.records.values("application", rec_id)["applicant_id"]
            == village.shown_values("application", rec_id)["applicant_id"]
        )
    # The retired key's private half is in the hub folder, and nowhere in the database.
    seed = private_bytes(seal_keys.retired(hub.folder)[0])
    if hub_backend == "sqlite":
        files = [p for p in hub.folder.iterdir() if p.name.startswith("hub.db")]
        assert files and not any(seed in p.read_bytes() for p in files)


def test_a_seal_to_a_key_the_hub_does_not_hold_is_held_and_released_once_it_opens(
    world: World, village: Station
) -> None:
    hub = world.hub
    first, second = _accept_two(world, village)  # their values sealed to the hub's first key
    keyring.rotate_key(hub, seal=True)
    hubkeys.adopt(village, keyring.bundle(hub))  # the batch itself is sealed to the new key
    retired = hub.folder / seal_keys.RETIRED_FILE
    aside = retired.with_name("aside.bin")
    retired.rename(aside)  # a hub whose retired key is not (yet) back from the security office's copy
    (ack,) = world.push(village)
    assert ack.quarantined == 2 and hub.records.values("application", first) == {}
    held = quarantine_review.quarantine_rows(hub)
    assert [r["code"] for r in held] == ["hub_seal", "hub_seal"]
    assert "neither the hub's current sealing key nor one it retired" in held[0]["reason"]
    shown = held[0]["content"]  # what the operator sees: the masks the change carries, no plaintext
    assert shown is not None and shown["id"] in (first, second)
    stored = village.records.values("application", shown["id"])["applicant_id"]
    assert shown["fields"]["applicant_id"] == sealed_value.mask_of(stored) and "*" in shown["fields"]["applicant_id"]
    with pytest.raises(Refused) as refused:
        quarantine_review.release(hub, int(held[0]["id"]), by="审核员")
    assert refused.value.code == "hub_seal" and "只能驳回" in str(refused.value)

    aside.rename(retired)  # the key is back: the same release now opens it and asks admission as ingest
    ids = {r["seq"]: int(r["id"]) for r in held}
    for seq in sorted(ids):
        out = quarantine_review.release(hub, ids[seq], by="审核员")
        assert out["change"] == {"origin": VILLAGE, "epoch": 1, "seq": seq}  # applied as the station sent it
    assert [r["state"] for r in quarantine_review.quarantine_rows(hub, include_closed=True)] == ["released"] * 2
    for rec_id in (first, second):
        assert (
            hub.records.values("application", rec_id)["applicant_id"]
            == village.shown_values("application", rec_id)["applicant_id"]
        )
    assert all(hub.records.has_change(VILLAGE, 1, seq) for seq in ids)


def test_hub_rotate_key_seal_on_the_command_line_says_which_sealing_key_is_new(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    old = world.hub.keys.seal_key_id
    assert sanji(["hub", "rotate-key", str(world.hub.folder), "--seal", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"key_id", "version", "seal_key_id"} and out["seal_key_id"] != old
    assert [key_id(public_bytes(k)) for k in seal_keys.retired(world.hub.folder)] == [old]
    assert sanji(["hub", "rotate-key", str(world.hub.folder), "--json"]) == 0  # without --seal: as before
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"key_id", "version"}
    assert len(seal_keys.retired(world.hub.folder)) == 1
