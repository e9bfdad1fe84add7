"""Sealed personal values in reconciliation's repair (issue 16): a change of another origin a station
re-sends with its values sealed at rest is held with its hub seal intact, and released through the same
opening as ingest; a station's own change minimised to masks still goes back whole to a hub that lost
it (the hub seal is kept), and one minimised without a seal is held as ``minimised``, saying where its
values still are. Nothing authentic is dropped. Applicants are generated."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import keyring, quarantine_review, reconcile, seal_keys
from hub.backup import backup
from hub.restore import restore
from hub.service import Hub
from node import at_rest_minimise, commands
from node.reconcile import SCOPE_SQL, repair_wire
from node.station import Station
from protocol.codec import unpack
from protocol.reconciliation import ReconcileRequest, RepairAnswer
from sync import sealed_value
from tests.conftest import World, sqlite_only

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"
ITEM = "360802-0009"
CARD = "银行卡"

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


def _backed_up(world: World) -> Path:
    out = world.root / "hub-backup.db"
    backup(world.hub, out)
    return out


def _restored(world: World, source: Path) -> None:
    """What `sanji hub restore HUB --from BACKUP` does, with the hub stopped for it."""
    world.hub.close()
    assert restore(world.hub.folder, source)["restored"] is True
    world.hub = Hub.open(world.hub.folder, clock=world.clock)


def _repair(station: str, **kw: tuple[object, ...]) -> ReconcileRequest:
    return ReconcileRequest("repair", 0, changes=kw.get("changes", ()), foreign=kw.get("foreign", ()))


def _rows(st: Station, origin: str, rec_id: str) -> list[list[object]]:
    """What the station's repair sends for ``rec_id``'s changes of ``origin``."""
    rows = st.conn.execute(SCOPE_SQL + " AND c.origin=? AND c.rid=?", (origin, rec_id)).fetchall()
    return [repair_wire(r) for r in rows]


def _accepted(world: World, village: Station) -> str:
    app = commands.accept(village, world.application(ITEM, st=village, deferred=[CARD]), author="zhangsan")
    return str(app["id"])


@pytest.mark.parametrize("signed_in", [True, False])
def test_another_origin_s_sealed_change_re_sent_is_held_with_its_seal_intact(
    world: World, signed_in_pair: tuple[Station, Station], signed_in: bool
) -> None:
    township, village = signed_in_pair
    rec_id = _accepted(world, village)
    world.push(village)
    if not signed_in:
        township.session = None  # the feed page comes in unattended: the values are held pending
    world.pull(township)  # the village's application reaches its township, sealed at rest there
    (wire,) = _rows(township, VILLAGE, rec_id)
    stored = wire[6]
    assert isinstance(stored, dict) and sealed_value.is_sealed(stored["applicant_id"])
    assert len(wire) == 10, "the township keeps the values sealed to the hub beside another origin's change"

    got = reconcile.repair(world.hub, TOWNSHIP, _repair(TOWNSHIP, foreign=(wire,)))
    assert got.to_wire() == {"applied": 0, "held": 1, "skipped": 0}  # held, never skipped
    (row,) = quarantine_review.quarantine_rows(world.hub)
    assert (row["code"], row["sender"], row["origin"], row["relayed"]) == ("foreign_origin", TOWNSHIP, VILLAGE, True)
    assert row["content"]["fields"]["applicant_id"] == sealed_value.mask_of(stored["applicant_id"])
    entry = world.hub.store.held_entry(int(row["id"]))
    assert entry is not None and len(unpack(entry.raw)) == 10  # type: ignore[arg-type]  # the seal kept, not opened
    # Re-sent again, it is the same held change, not a second one.
    again = reconcile.repair(world.hub, TOWNSHIP, _repair(TOWNSHIP, foreign=(wire,)))
    assert again.to_wire() == {"applied": 0, "held": 0, "skipped": 1}


@sqlite_only  # `hub backup`/`restore` copy hub.db; the repair and release code is the same on PostgreSQL
def test_a_sealed_change_lost_in_a_hub_restore_comes_back_through_another_station_and_is_released(
    world: World, signed_in_pair: tuple[Station, Station]
) -> None:
    township, village = signed_in_pair
    older = _backed_up(world)
    rec_id = _accepted(world, village)
    world.push(village)
    world.pull(township)
    _restored(world, older)  # the hub lost the application; the township still holds it
    assert world.hub.records.values("application", rec_id) == {}
    got = reconcile.repair(world.hub, TOWNSHIP, _repair(TOWNSHIP, foreign=tuple(_rows(township, VILLAGE, rec_id))))
    assert got.to_wire() == {"applied": 0, "held": 1, "skipped": 0}
    (row,) = quarantine_review.quarantine_rows(world.hub)
    out = quarantine_review.release(world.hub, int(row["id"]), by="审核员")  # opens the seal kept intact
    assert out["state"] == "released" and out["change"]["origin"] == world.hub.hub_id
    assert (
        world.hub.records.values("application", rec_id)["applicant_id"]
        == (village.shown_values("application", rec_id)["applicant_id"])
    )


def test_a_foreign_change_that_does_not_read_is_held_not_dropped(
    world: World, signed_in_pair: tuple[Station, Station]
) -> None:
    township, village = signed_in_pair
    rec_id = _accepted(world, village)
    world.push(village)
    world.pull(township)
    (wire,) = _rows(township, VILLAGE, rec_id)
    no_seal = wire[:9]  # sealed values without the seal that opens them
    got = reconcile.repair(world.hub, TOWNSHIP, _repair(TOWNSHIP, foreign=(no_seal, [VILLAGE, "x"])))
    assert got.to_wire() == {"applied": 0, "held": 2, "skipped": 0}
    codes = sorted(r["code"] for r in quarantine_review.quarantine_rows(world.hub))
    assert codes == ["hub_seal", "invalid"]


def _minimised(world: World, village: Station) -> str:
    """A delivered application of the village, receipted by the hub and minimised 31 days later."""
    from tests.node.test_commands import IMMEDIATE_ITEM

    app = commands.accept(village, world.application(IMMEDIATE_ITEM, st=village), author="zhangsan")
    number = str(app["number"])
    commands.transition(village, number, "completed", author="zhangsan")
    commands.transition(village, number, "delivered", author="zhangsan")
    world.push(village)
    world.clock.advance(31 * 86_400_000)
    assert at_rest_minimise.minimise(village) == 1
    return str(app["id"])


@pytest.fixture
def backed_up_then_minimised(world: World, signed_in_pair: tuple[Station, Station]) -> tuple[Station, Path, str]:
    """The village, a backup of the hub taken before its application, and that application, delivered
    and minimised since (:func:`_minimised`)."""
    _township, village = signed_in_pair
    older = _backed_up(world)
    return village, older, _minimised(world, village)


def _repair_own(world: World, village: Station, wires: list[list[object]]) -> RepairAnswer:
    """The village's repair re-sending its own changes to the hub, with its chain's head."""
    chain = {"epoch": 1, "batched_seq": village.meta.int("batched_seq"), "hash": village.meta.bytes("chain")}
    return reconcile.repair(
        world.hub, VILLAGE, ReconcileRequest("repair", 0, changes=tuple(wires), foreign=(), chain=chain)
    )


@sqlite_only  # `hub backup`/`restore` copy hub.db; the repair code is the same on PostgreSQL
def test_a_minimised_change_goes_back_whole_to_a_hub_restored_from_an_older_backup(
    world: World, backed_up_then_minimised: tuple[Station, Path, str]
) -> None:
    village, older, rec_id = backed_up_then_minimised
    wires = _rows(village, VILLAGE, rec_id)
    applicant_id = wires[0][6]["applicant_id"]  # type: ignore[index]
    assert sealed_value.decode(applicant_id)[1:] == (None, None)  # the mask only, at the station
    assert all(len(w) == 10 for w in wires if any(sealed_value.is_sealed(v) for v in w[6].values()))  # type: ignore[union-attr]
    _restored(world, older)
    got = _repair_own(world, village, wires)
    assert got.to_wire() == {"applied": len(wires), "held": 0, "skipped": 0}
    held = world.hub.records.values("application", rec_id)
    assert held["status"] == "delivered"
    assert isinstance(held["applicant_id"], str) and "*" not in held["applicant_id"]  # the plaintext, opened
    assert sealed_value.mask_for("applicant_id", held["applicant_id"]) == sealed_value.mask_of(applicant_id)


@sqlite_only  # `hub backup`/`restore` copy hub.db; the repair code is the same on PostgreSQL
def test_a_minimised_change_without_its_seal_is_held_as_minimised_saying_where_its_values_are(
    world: World, backed_up_then_minimised: tuple[Station, Path, str]
) -> None:
    village, older, rec_id = backed_up_then_minimised
    with village.transaction():  # minimised by an earlier version, which threw the hub seals away
        village.conn.execute("UPDATE changes SET hub_seal=NULL WHERE application=?", (rec_id,))
    wires = _rows(village, VILLAGE, rec_id)
    _restored(world, older)
    got = _repair_own(world, village, wires)
    assert got.held >= 1 and got.applied + got.held == len(wires)  # nothing skipped, nothing dropped
    rows = quarantine_review.quarantine_rows(world.hub)
    first = next(r for r in rows if "applicant_id" in r["content"]["fields"])
    assert first["code"] == "minimised"
    assert "遮蔽" in first["reason"] and "备份" in first["reason"] and "纸质档案" in first["reason"]
    assert (first["origin"], first["epoch"]) == (VILLAGE, 1) and first["seq"] > 0  # where in its chain
    assert world.hub.records.values("application", rec_id) == {}  # never applied with masks for values
    again = _repair_own(world, village, wires)
    assert again.to_wire() == {"applied": 0, "held": 0, "skipped": len(wires)}  # held once, however often sent


@sqlite_only  # `hub backup`/`restore` copy hub.db; the repair and release code is the same on PostgreSQL
def test_a_re_sent_change_whose_seal_does_not_open_yet_is_held_in_its_place_and_released_as_sent(
    world: World, backed_up_then_minimised: tuple[Station, Path, str]
) -> None:
    village, older, rec_id = backed_up_then_minimised  # its hub seal is to the hub's first sealing key
    keyring.rotate_key(world.hub, seal=True)
    retired = world.hub.folder / seal_keys.RETIRED_FILE
    aside = retired.with_name("aside.bin")
    retired.rename(aside)  # the retired key is not back yet from the security office's copy
    _restored(world, older)
    wires = _rows(village, VILLAGE, rec_id)
    got = _repair_own(world, village, wires)
    assert got.applied == 0 and got.held == len(wires)
    rows = quarantine_review.quarantine_rows(world.hub)
    (sealed,) = [r for r in rows if r["code"] == "hub_seal"]
    assert (sealed["origin"], sealed["relayed"]) == (VILLAGE, False)
    aside.rename(retired)
    out = quarantine_review.release(world.hub, int(sealed["id"]), by="审核员")
    assert out["change"] == {"origin": VILLAGE, "epoch": 1, "seq": sealed["seq"]}  # applied as the village sent it
    assert out["rejudged"] == len(wires) - 1  # what built on it follows
    assert world.hub.records.values("application", rec_id)["status"] == "delivered"
