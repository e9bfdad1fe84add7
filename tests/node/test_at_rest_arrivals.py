"""Personal values that arrive with nobody signed in are held pending, and sealed at the next sign-in;
a station that held plaintext before it had accounts is sealed at its first sign-in (issue 16,
``node/at_rest_arrivals.py``). Applicants are generated (``tests.conftest.People``)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node import uplink
from node.station import Station
from protocol.codec import unpack
from sync import sealed_value
from tests.conftest import World
from tests.node.staff_helpers import STAFF_PASSWORD, with_staff
from tests.node.test_staff_cli import TOWNSHIP, VILLAGE, run
from tests.node.test_thief import DISTRICT_ITEM, FIELD_DEVICE, INCOME, _accept, _inspection_page, _thief_finds


@pytest.fixture
def village(world: World) -> Iterator[Station]:
    world.clock.ms = int(time.time() * 1000)  # the CLI stamps with the real clock; the hub must agree
    world.station(TOWNSHIP, "township")
    yield world.station(VILLAGE, "village", TOWNSHIP)


def _sign_in(capsys: pytest.CaptureFixture[str], st: Station) -> dict[str, object]:
    code, out = run(
        capsys, "node", "applications", str(st.folder), "--reveal", "--staff", "zhangsan", stdin=STAFF_PASSWORD
    )
    assert code == 0, out
    return {str(r["id"]): r for r in out["applications"]}  # type: ignore[union-attr]


def _reopen(st: Station) -> Station:
    """What the test reads after a command: the folder as the command left it."""
    return Station(st.folder, clock=st.clock)


def _stored_task_fields(st: Station, task_id: str) -> dict[str, object]:
    row = st.conn.execute("SELECT fields FROM changes WHERE entity='task' AND rid=?", (task_id,)).fetchone()
    fields = unpack(bytes(row[0]))
    assert isinstance(fields, dict)
    return fields


def test_a_task_from_the_feed_with_nobody_signed_in_is_held_pending_then_sealed_at_sign_in(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with_staff(village.db, VILLAGE)
    world.station(FIELD_DEVICE, "field")
    p = _accept(world, village, capsys, 0, item=DISTRICT_ITEM, defer=INCOME)  # the first sign-in draws the at-rest key
    assert village.meta.bytes("at_rest_pub")
    world.push(village)
    # The hub assigns the inspection; the task, with the applicant's phone and address, comes down in a
    # real feed page sealed to the station, applied as a sync round does: nobody is signed in.
    assert village.session is None
    assert uplink.apply_feed(village, _inspection_page(world, village, p["number"])).pulled >= 2
    (task_id,) = village.conn.execute("SELECT rid FROM changes WHERE entity='task'").fetchone()
    stored = _stored_task_fields(village, task_id)
    mask, siv, pending = sealed_value.decode(stored["phone"])  # type: ignore[arg-type]
    assert (mask, siv) == (p["phone"][:3] + "****" + p["phone"][-4:], None) and pending
    assert village.conn.execute("SELECT digest FROM changes WHERE rid=?", (task_id,)).fetchone()[0]
    stolen = tmp_path / "stolen"
    shutil.copytree(village.folder, stolen)
    assert _thief_finds(stolen, [p]) == []

    _sign_in(capsys, village)  # the next sign-in seals it for good
    after = _reopen(village)
    _mask, siv, pending = sealed_value.decode(_stored_task_fields(after, task_id)["phone"])  # type: ignore[arg-type]
    assert siv and pending is None
    assert sealed_value.is_sealed(after.records.values("task", task_id)["address"])  # the refolded state too
    assert after.shown_values("task", task_id)["phone"] == mask  # no session: the mask
    after.close()


def test_a_plaintext_station_is_sealed_at_its_first_sign_in_and_sync_goes_on(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    people = [_accept_plain(world, village, capsys, i) for i in range(3)]
    world.push(village)
    people.append(_accept_plain(world, village, capsys, 3))  # not synced yet
    before = tmp_path / "before"
    shutil.copytree(village.folder, before)
    assert _thief_finds(before, people)  # the old way: plaintext on disk
    with_staff(village.db, VILLAGE)  # upgraded: `node add-admin` draws the data key

    rows = _sign_in(capsys, village)  # the first sign-in seals everything, then shows it all
    for p in people:
        assert rows[p["id"]]["applicant_id"] == p["id_number"]
    village.close()
    stolen = tmp_path / "stolen"
    shutil.copytree(village.folder, stolen)
    assert _thief_finds(stolen, people) == []

    st = Station(village.folder, clock=world.clock)
    world.stations[world.stations.index(village)] = st
    world.push(st)  # unattended: the unsynced one goes with its hub seal
    assert world.hub.store.conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] == 0
    for p in people:
        assert world.hub.records.values("application", p["id"])["applicant_phone"] == p["phone"]


def _accept_plain(world: World, st: Station, capsys: pytest.CaptureFixture[str], n: int) -> dict[str, str]:
    from tests.node.test_staff_cli import CARD, ITEM

    p = dict(world.people.applicant())
    p["address"] = f"兴桥镇岗塘村{n + 3}组{n * 7 + 11}号"
    args = ["node", "accept", str(st.folder), "--item", ITEM, "--name", p["name"], "--id-number", p["id_number"]]
    args += ["--phone", p["phone"], "--address", p["address"], "--defer", CARD]
    for m in world.application(ITEM, st=st, deferred=[CARD]).submitted:
        args += ["--material", m]
    code, out = run(capsys, *args)
    assert code == 0, out
    p["id"] = str(out["id"])
    return p


def test_a_delivered_application_the_hub_has_long_held_keeps_only_masks(
    world: World, village: Station, tmp_path: Path
) -> None:
    from node import at_rest_minimise, commands
    from node.staff_accounts import sign_in
    from tests.node.test_commands import IMMEDIATE_ITEM

    with_staff(village.db, VILLAGE)
    village.session = sign_in(
        village.db, station=VILLAGE, user="zhangsan", password=STAFF_PASSWORD, now_ms=village.clock()
    )
    app = world.application(IMMEDIATE_ITEM, st=village)
    delivered = commands.accept(village, app, author="zhangsan")
    kept = commands.accept(village, world.application(IMMEDIATE_ITEM, st=village), author="zhangsan")
    number = str(delivered["number"])
    commands.transition(village, number, "completed", author="zhangsan")
    commands.transition(village, number, "delivered", author="zhangsan")
    world.push(village)
    assert at_rest_minimise.minimise(village) == 0  # receipted just now: not yet
    world.clock.advance(31 * 86_400_000)
    assert at_rest_minimise.minimise(village) == 1
    did, other = str(delivered["id"]), str(kept["id"])
    for row in village.conn.execute("SELECT fields, hub_seal FROM changes WHERE application=?", (did,)):
        fields = unpack(bytes(row[0]))
        # The hub seal stays (only the hub can open it): what a repair re-sends to a restored hub.
        assert isinstance(fields, dict) and (row[1] is not None) == any(map(sealed_value.is_sealed, fields.values()))
        for name in ("applicant_name", "applicant_id", "applicant_phone"):
            if name in fields:
                assert sealed_value.decode(fields[name])[1] is None  # the mask only
    village.session = sign_in(
        village.db, station=VILLAGE, user="zhangsan", password=STAFF_PASSWORD, now_ms=village.clock()
    )
    shown = village.shown_values("application", did)
    assert "*" in str(shown["applicant_id"]) and shown["applicant_id"] != app.id_number
    assert village.shown_values("application", other)["applicant_id"] != "" and "*" not in str(
        village.shown_values("application", other)["applicant_id"]
    )
    stolen = tmp_path / "stolen"
    shutil.copytree(village.folder, stolen)
    person = {"name": app.name, "id_number": app.id_number, "phone": app.phone, "address": "不会出现的地址"}
    assert _thief_finds(stolen, [person]) == []
