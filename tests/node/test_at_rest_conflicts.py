"""A thief finds no citizen's data in a station's ``conflicts`` rows either (issue 16).

Two writes to the same personal field made apart (the station's accept and the hub's correction of
the applicant's phone and address, each unaware of the other) meet at the station when the hub's
change comes down in a real feed page, and the station's fold records the pair in ``conflicts``. The
station's folder, copied as it lies, is searched for every value of both writes: with someone signed
in, with nobody signed in, and at a station that recorded the conflict in plaintext before it had
accounts and was then sealed at its first sign-in. Applicants are generated (``tests.conftest.People``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node import at_rest_arrivals
from node.station import Station
from protocol.codec import unpack
from sync import sealed_value
from sync.fold import values
from tests.conftest import World
from tests.node.staff_helpers import STAFF_PASSWORD, sign_in, with_staff
from tests.node.test_at_rest_arrivals import _accept_plain
from tests.node.test_staff_cli import TOWNSHIP, VILLAGE
from tests.node.test_thief import _accept, _thief_finds

FIELDS = {"applicant_phone": "phone", "address": "address"}


@pytest.fixture
def village(world: World) -> Iterator[Station]:
    world.clock.ms = int(time.time() * 1000)  # the CLI stamps with the real clock; the hub must agree
    world.station(TOWNSHIP, "township")
    yield world.station(VILLAGE, "village", TOWNSHIP)


def _hub_corrects(world: World, p: dict[str, str], n: int) -> dict[str, str]:
    """The hub writes a new phone and address for ``p``'s application as one that had not seen the
    station's (base 0): concurrent with the accept. Returns the corrected values as a person."""
    corrected = dict(p)
    corrected["phone"], corrected["address"] = f"137{n + 1:08d}", f"兴桥镇新村{n + 5}组{n * 3 + 2}号"
    with world.hub.store.transaction():
        world.hub.write(
            "application",
            p["id"],
            {"applicant_phone": corrected["phone"], "address": corrected["address"]},
            {"applicant_phone": 0, "address": 0},
            check=False,
        )
    return corrected


def _conflict_cells(st: Station, app_id: str) -> dict[str, list[object]]:
    """Every value the station's conflict rows for ``app_id`` hold, by field: winner's and loser's."""
    out: dict[str, list[object]] = {}
    for field, winner, loser in st.conn.execute(
        "SELECT field, winner, loser FROM conflicts WHERE entity='application' AND record=?", (app_id,)
    ):
        for cell in (unpack(bytes(winner)), unpack(bytes(loser))):
            assert isinstance(cell, list)
            out.setdefault(str(field), []).append(cell[2])
    return out


def _meet(world: World, st: Station, p: dict[str, str], n: int) -> dict[str, str]:
    """Push ``p``'s accept, have the hub correct it concurrently, and pull the correction down."""
    world.push(st)
    corrected = _hub_corrects(world, p, n)
    assert world.pull(st).pulled >= 1
    cells = _conflict_cells(st, p["id"])
    assert sorted(cells) == sorted(FIELDS), cells  # both fields met: the conflict rows exist
    return corrected


def _stolen(st: Station, tmp_path: Path, name: str) -> Path:
    stolen = tmp_path / name
    shutil.copytree(st.folder, stolen)  # while open: the -wal and -shm come along
    return stolen


def test_a_conflict_met_while_signed_in_is_sealed_in_the_conflicts_rows(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with_staff(village.db, VILLAGE)
    p = _accept(world, village, capsys, 0)
    village.session = sign_in(village.db, "zhangsan", STAFF_PASSWORD, now_ms=village.clock(), code=VILLAGE)
    corrected = _meet(world, village, p, 0)
    for field, cells in _conflict_cells(village, p["id"]).items():
        for value in cells:
            assert isinstance(value, bytes) and sealed_value.decode(value)[1], (field, value)  # SIV-sealed
    assert _thief_finds(_stolen(village, tmp_path, "stolen"), [p, corrected]) == []
    shown = village.shown_values("application", p["id"])  # signed in: the winner opens
    assert {shown["applicant_phone"], shown["address"]} <= {p["phone"], p["address"], *corrected.values()}


def test_a_conflict_met_with_nobody_signed_in_holds_only_sealed_or_pending_values(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with_staff(village.db, VILLAGE)
    p = _accept(world, village, capsys, 1)  # the sign-in of the accept draws the at-rest key
    assert village.session is None and village.meta.bytes("at_rest_pub")
    corrected = _meet(world, village, p, 1)
    for cells in _conflict_cells(village, p["id"]).values():
        assert all(isinstance(v, bytes) and sealed_value.is_sealed(v) for v in cells), cells
    assert _thief_finds(_stolen(village, tmp_path, "unattended"), [p, corrected]) == []

    village.session = sign_in(village.db, "zhangsan", STAFF_PASSWORD, now_ms=village.clock(), code=VILLAGE)
    at_rest_arrivals.on_sign_in(village)  # what every sign-in does
    for cells in _conflict_cells(village, p["id"]).values():  # sealed for good, like the log
        assert all(sealed_value.decode(v)[1] and sealed_value.decode(v)[2] is None for v in cells), cells  # type: ignore[arg-type]
    assert _thief_finds(_stolen(village, tmp_path, "after"), [p, corrected]) == []


def test_conflicts_a_station_recorded_in_plaintext_are_sealed_at_its_first_sign_in(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    p = _accept_plain(world, village, capsys, 2)
    corrected = _meet(world, village, p, 2)
    before = village.records.load("application", p["id"])
    ids = village.conn.execute("SELECT id, rule, detected_hlc FROM conflicts ORDER BY id").fetchall()
    assert corrected["phone"] in _conflict_cells(village, p["id"])["applicant_phone"]  # the old way: plain
    with_staff(village.db, VILLAGE)  # upgraded: `node add-admin` draws the data key
    village.session = sign_in(village.db, "zhangsan", STAFF_PASSWORD, now_ms=village.clock(), code=VILLAGE)
    at_rest_arrivals.on_sign_in(village)  # the first sign-in seals everything held
    for cells in _conflict_cells(village, p["id"]).values():
        assert all(isinstance(v, bytes) and sealed_value.decode(v)[1] for v in cells), cells
    assert _thief_finds(_stolen(village, tmp_path, "stolen"), [p, corrected]) == []
    assert village.conn.execute("SELECT id, rule, detected_hlc FROM conflicts ORDER BY id").fetchall() == ids
    # The fold is untouched: the same winner, now sealed, opens to the same value.
    shown = village.shown_values("application", p["id"])
    assert (shown["applicant_phone"], shown["address"]) == (
        values(before)["applicant_phone"],
        values(before)["address"],
    )


def test_minimisation_leaves_only_masks_in_the_conflicts_rows_too(world: World, village: Station) -> None:
    from node import at_rest_minimise, commands
    from tests.node.test_commands import IMMEDIATE_ITEM

    with_staff(village.db, VILLAGE)
    village.session = sign_in(village.db, "zhangsan", STAFF_PASSWORD, now_ms=village.clock(), code=VILLAGE)
    app = world.application(IMMEDIATE_ITEM, st=village)
    accepted = commands.accept(village, app, author="zhangsan")
    p = {"id": str(accepted["id"]), "name": app.name, "id_number": app.id_number, "phone": app.phone}
    p["address"] = str(village.shown_values("application", p["id"]).get("address") or "")
    corrected = _meet(world, village, p, 3)
    commands.transition(village, str(accepted["number"]), "completed", author="zhangsan")
    commands.transition(village, str(accepted["number"]), "delivered", author="zhangsan")
    world.push(village)
    world.clock.advance(31 * 86_400_000)
    assert at_rest_minimise.minimise(village) == 1
    for cells in _conflict_cells(village, p["id"]).values():
        for v in cells:
            mask, siv, pending = sealed_value.decode(v)  # type: ignore[arg-type]
            assert mask and siv is None and pending is None, v
    masks = {sealed_value.decode(v)[0] for v in _conflict_cells(village, p["id"])["applicant_phone"]}  # type: ignore[arg-type]
    assert masks == {x[:3] + "****" + x[-4:] for x in (p["phone"], corrected["phone"])}
