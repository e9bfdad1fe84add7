"""Domain commands at the station window: accept, back-entry, workflow steps and listings.

The station is real (``Station(..., create=True)``) and enrolled with a real hub in ``tmp_path`` through
``hub.enrolment.redeem`` and the node's ``_pin``; no HTTP is involved. DESIGN.md: every write is a
domain command that, in one transaction, validates, updates the record and appends one change; a
refusal writes nothing.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from node import commands
from node.commands import Application
from node.station import Station
from replica.errors import Refused
from replica.ids import CHINA, iso_from_ms
from sync.session import AckResult
from tests.conftest import MINUTE_MS, World, make_id, wrong_check_char

TOWNSHIP_ITEM = "360802-0010"  # promised; 居民身份证 and 近期免冠照片 required, neither deferrable
DEFERRABLE_ITEM = "360802-0009"  # promised, township-decided; 银行卡 may be deferred
IMMEDIATE_ITEM = "360802-0001"  # immediate, township-decided
STREET_ONLY_ITEM = "360802-0024"  # community and street only
DISTRICT_ITEM_AT_TOWNSHIP = "360802-0036"  # township may accept, the district decides
TOWNSHIP_ONLY_ITEM = "360802-0037"  # township accepts and decides


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    """A hub with township T1 and its village T1-V1, both enrolled."""
    return make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))


@pytest.fixture
def v1(world: World) -> Station:
    return world.get("T1-V1")


def t1(world: World) -> Station:
    return world.get("T1")


def state(st: Station) -> tuple[int, int, int, int]:
    """(changes, applications, seq, counter): what a refused command must leave untouched."""
    changes = st.conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
    apps = st.conn.execute("SELECT COUNT(*) FROM applications").fetchone()[0]
    return changes, apps, st.meta.int("seq"), st.meta.int("counter")


def good(world: World, st: Station) -> Application:
    return world.application(TOWNSHIP_ITEM, st=st)


# -- accept: refusals write nothing ------------------------------------------------------------------


def _cases(world: World, st: Station) -> dict[str, tuple[Application, str | None]]:
    g = good(world, st)
    later = iso_from_ms(world.clock() + 11 * MINUTE_MS)
    return {
        "unknown_item": (replace(g, item="360802-9999"), None),
        "tier_not_allowed": (replace(g, item=STREET_ONLY_ITEM, submitted=["居民身份证"]), "tier_not_allowed"),
        "missing_required_material": (replace(g, submitted=["居民身份证"]), "missing_material"),
        "non_deferrable_deferred": (replace(g, submitted=["近期免冠照片"], deferred=["居民身份证"]), "not_deferrable"),
        "unknown_material": (replace(g, submitted=[*g.submitted, "结婚证"]), "unknown_material"),
        "submitted_and_deferred": (replace(g, deferred=["居民身份证"]), "material_conflict"),
        "bad_id_check_digit": (replace(g, id_number=wrong_check_char(g.id_number)), "id_checksum"),
        "id_too_short": (replace(g, id_number=g.id_number[:17]), "id_length"),
        "id_born_tomorrow": (replace(g, id_number=make_id(7, born=date(2026, 3, 3))), "id_birth_future"),
        "phone_too_short": (replace(g, phone="1390000"), "phone_format"),
        "phone_bad_prefix": (replace(g, phone="12900000001"), "phone_prefix"),
        "phone_letters": (replace(g, phone="1390000000a"), "phone_format"),
        "empty_name": (replace(g, name="   "), None),
        "name_with_nul": (replace(g, name="测试\x00"), None),
        "name_too_long": (replace(g, name="测" * 51), None),
        "note_too_long": (replace(g, note="注" * 4001), None),
        "accepted_in_the_future": (replace(g, accepted_at=later), None),
        "accepted_at_garbage": (replace(g, accepted_at="yesterday"), None),
    }


CASES = [
    "unknown_item",
    "tier_not_allowed",
    "missing_required_material",
    "non_deferrable_deferred",
    "unknown_material",
    "submitted_and_deferred",
    "bad_id_check_digit",
    "id_too_short",
    "id_born_tomorrow",
    "phone_too_short",
    "phone_bad_prefix",
    "phone_letters",
    "empty_name",
    "name_with_nul",
    "name_too_long",
    "note_too_long",
    "accepted_in_the_future",
    "accepted_at_garbage",
]


@pytest.mark.parametrize("case", CASES)
def test_a_refused_application_writes_nothing(world: World, v1: Station, case: str) -> None:
    cases = _cases(world, v1)
    assert sorted(cases) == sorted(CASES)
    app, code = cases[case]
    world.accept(v1, TOWNSHIP_ITEM)  # something already there, so "nothing" is not just "empty"
    before = state(v1)
    with pytest.raises(Refused) as err:
        commands.accept(v1, app)
    if code is not None:
        assert err.value.code == code
    assert str(err.value)  # a reason staff can act on
    assert state(v1) == before
    assert v1.pending_changes() == 1


def test_the_good_application_of_the_refusal_cases_is_accepted(world: World, v1: Station) -> None:
    """The refusal cases are each one change away from this one, which is accepted."""
    assert commands.accept(v1, good(world, v1))["status"] == "accepted"


# -- accept: the record and its change in one transaction ---------------------------------------------


def _own_changes(st: Station) -> list[tuple[int, int, str, str]]:
    return [
        tuple(r)
        for r in st.conn.execute(  # type: ignore[misc]
            "SELECT seq, hlc, entity, rid FROM changes WHERE origin=? ORDER BY seq", (st.code,)
        )
    ]


def test_an_accepted_application_logs_exactly_one_change(world: World, v1: Station) -> None:
    before = state(v1)
    out = world.accept(v1, DEFERRABLE_ITEM, deferred=["银行卡"])
    changes, apps, seq, counter = state(v1)
    assert (changes, apps, seq, counter) == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1)
    (last,) = _own_changes(v1)[-1:]
    assert (last[0], last[2], last[3]) == (seq, "application", out["id"])
    vals = v1.records.values("application", str(out["id"]))
    assert vals["number"] == out["number"] and vals["status"] == "accepted" and vals["station"] == "T1-V1"
    assert vals["m.银行卡"][0] == "deferred" and vals["m.居民身份证"] == ["submitted", ""]  # type: ignore[index]
    assert vals["catalogue_version"] == 1 and vals["kind"] == "promised"
    assert out["due_date"] == vals["due_date"]


def test_seq_is_gapless_and_hlc_strictly_increases_even_when_the_clock_stalls_or_goes_back(
    world: World, v1: Station
) -> None:
    for step in (0, 0, 1, -5 * MINUTE_MS, 0, 3):  # a stalled clock, then one set back five minutes
        world.clock.advance(step)
        world.accept(v1, TOWNSHIP_ITEM)
    rows = _own_changes(v1)
    assert [r[0] for r in rows] == list(range(1, 7))
    hlcs = [r[1] for r in rows]
    assert all(a < b for a, b in itertools.pairwise(hlcs))
    assert v1.meta.int("hlc") == hlcs[-1]


def test_a_failure_after_the_record_is_written_rolls_back_the_change_too(
    world: World, v1: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.accept(v1, TOWNSHIP_ITEM)
    before = state(v1)
    real_apply = v1.records.apply

    def apply_then_fail(changes):  # type: ignore[no-untyped-def]
        real_apply(changes)
        raise OSError("disk unplugged")

    monkeypatch.setattr(v1.records, "apply", apply_then_fail)
    with pytest.raises(OSError):
        world.accept(v1, TOWNSHIP_ITEM)
    monkeypatch.undo()
    assert state(v1) == before
    assert world.accept(v1, TOWNSHIP_ITEM)["number"] == f"T1-V1-20260302-{before[3] + 1:05d}"


def test_numbers_are_unique_across_200_accepts_and_days(world: World, v1: Station) -> None:
    numbers = []
    for n in range(200):
        if n == 120:
            world.clock.advance(24 * 60 * MINUTE_MS)  # the counter does not restart at midnight
        numbers.append(str(world.accept(v1, TOWNSHIP_ITEM)["number"]))
    assert len(set(numbers)) == 200
    assert numbers[0] == "T1-V1-20260302-00001" and numbers[-1] == "T1-V1-20260303-00200"
    assert all(re.fullmatch(r"T1-V1-2026030[23]-\d{5}", n) for n in numbers)
    assert v1.conn.execute("SELECT COUNT(DISTINCT number) FROM applications").fetchone()[0] == 200
    assert [r[0] for r in _own_changes(v1)] == list(range(1, 201))


# -- back-entry --------------------------------------------------------------------------------------


def _line(world: World, item: str = TOWNSHIP_ITEM, **over: object) -> str:
    p = world.people.applicant()
    raw: dict[str, object] = {
        "item": item,
        "applicant": {"name": p["name"], "id_number": p["id_number"], "phone": p["phone"]},
        "materials": [{"name": "居民身份证"}, {"name": "近期免冠照片", "status": "submitted"}],
        "address": "测试路2号",
    }
    raw.update(over)
    return json.dumps(raw, ensure_ascii=False)


@pytest.mark.parametrize("chunk", [500, 2])
def test_back_entry_keeps_good_lines_and_reports_refused_ones_by_line(
    world: World, v1: Station, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "BACK_ENTRY_CHUNK", chunk)
    yesterday = datetime(2026, 3, 1, 16, 30, tzinfo=CHINA).isoformat()
    lines = [
        _line(world, accepted_at=yesterday),  # 1 good, entered a day late
        "{not json",  # 2
        "",  # 3 blank: skipped, still counted
        _line(world, item="360802-9999"),  # 4 unknown item
        _line(
            world,
            item=DEFERRABLE_ITEM,
            materials=[{"name": "居民身份证"}, {"name": "户口簿"}, {"name": "银行卡", "status": "deferred"}],
        ),  # 5 good
        _line(world, accepted_at=iso_from_ms(world.clock() + 3_600_000)),  # 6 in the future
        "[1, 2]",  # 7 not an object
        _line(world, materials=[{"name": "居民身份证", "status": "lost"}]),  # 8 unknown material status
        _line(world, applicant={"name": "测试", "id_number": wrong_check_char(make_id(9)), "phone": "13900000000"}),
        _line(world),  # 10 good
    ]
    out = commands.accept_lines(v1, lines)
    assert out["accepted"] == 3
    refused = out["refused"]
    assert isinstance(refused, list)
    assert [r["line"] for r in refused] == [2, 4, 6, 7, 8, 9]
    assert all(r["reason"] for r in refused)
    changes, apps, seq, counter = state(v1)
    assert (changes, apps, seq, counter) == (3, 3, 3, 3)
    rows = v1.conn.execute("SELECT number, accepted_at FROM applications ORDER BY number").fetchall()
    assert [r[0] for r in rows] == ["T1-V1-20260301-00001", "T1-V1-20260302-00002", "T1-V1-20260302-00003"]
    assert rows[0][1] == datetime(2026, 3, 1, 16, 30, tzinfo=CHINA).isoformat()


def test_back_entry_of_only_refused_lines_writes_nothing(world: World, v1: Station) -> None:
    out = commands.accept_lines(v1, ["{", _line(world, item="nope"), "   "])
    assert out == {
        "accepted": 0,
        "refused": [
            {"line": 1, "reason": out["refused"][0]["reason"]},  # type: ignore[index]
            {"line": 2, "reason": out["refused"][1]["reason"]},
        ],
    }  # type: ignore[index]
    assert state(v1) == (0, 0, 0, 0)


# -- workflow ---------------------------------------------------------------------------------------


def _refuse(st: Station, number: str, to: str, match: str | None = None) -> None:
    before = state(st)
    with pytest.raises(Refused, match=match):
        commands.transition(st, number, to)
    assert state(st) == before


def _move(st: Station, number: str, to: str) -> None:
    before = state(st)
    assert commands.transition(st, number, to) == {"number": number, "status": to}
    assert state(st)[0] == before[0] + 1 and state(st)[2] == before[2] + 1
    assert st.conn.execute("SELECT status FROM applications WHERE number=?", (number,)).fetchone()[0] == to


def test_a_village_asks_for_and_takes_in_missing_materials(world: World, v1: Station) -> None:
    out = world.accept(v1, DEFERRABLE_ITEM, deferred=["银行卡"])
    number = str(out["number"])
    _move(v1, number, "supplement_requested")
    _refuse(v1, number, "under_review")  # only from 受理
    _move(v1, number, "accepted")  # resubmit: the deferred material is now supplemented
    vals = v1.records.values("application", str(out["id"]))
    assert vals["m.银行卡"] == ["supplemented", ""]
    assert vals["m.居民身份证"] == ["submitted", ""]


def test_a_village_may_not_review_decide_or_complete_a_promised_item(world: World, v1: Station) -> None:
    number = str(world.accept(v1, TOWNSHIP_ITEM)["number"])
    _refuse(v1, number, "under_review", "本站不能转入审查")
    _refuse(v1, number, "completed")  # promised items are not completed at the window
    _refuse(v1, number, "approved")  # no move leads there from 受理
    _refuse(v1, number, "accepted")  # already
    _refuse(v1, number, "finished", "没有“finished”这个状态")
    _refuse(v1, "T1-V1-20260302-99999", "withdrawn", "本站没有")
    _move(v1, number, "withdrawn")
    _refuse(v1, number, "accepted")  # terminal
    _refuse(v1, number, "not_accepted")


def test_a_village_completes_and_delivers_an_immediate_item(world: World, v1: Station) -> None:
    number = str(world.accept(v1, IMMEDIATE_ITEM)["number"])
    _move(v1, number, "completed")
    _move(v1, number, "delivered")
    for to in ("accepted", "completed", "withdrawn"):
        _refuse(v1, number, to)


def test_the_township_decides_its_villages_item_and_the_village_delivers(world: World, v1: Station) -> None:
    township = t1(world)
    number = str(world.accept(v1, TOWNSHIP_ITEM)["number"])
    assert [a.result for a in world.push(v1)] == [AckResult.APPLIED]
    world.pull(township)
    _move(township, number, "under_review")
    _refuse(township, number, "inspecting", "请安排踏勘（sanji node inspect")
    _move(township, number, "approved")
    _move(township, number, "completed")
    _refuse(township, number, "delivered", "本站不能送达")  # handing over is the accepting station's
    assert all(a.result is AckResult.APPLIED for a in world.push(township))
    world.pull(v1)
    assert v1.conn.execute("SELECT status FROM applications WHERE number=?", (number,)).fetchone()[0] == "completed"
    _move(v1, number, "delivered")
    assert all(a.result is AckResult.APPLIED for a in world.push(v1))
    assert world.hub.records.values("application", commands.find(v1, number))["status"] == "delivered"


def test_a_township_decides_its_own_items_but_not_the_districts(world: World, v1: Station) -> None:
    township = t1(world)
    district = str(world.accept(township, DISTRICT_ITEM_AT_TOWNSHIP)["number"])
    _refuse(township, district, "under_review", "本站不能转入审查")
    _move(township, district, "supplement_requested")  # still the accepting station
    own = str(world.accept(township, TOWNSHIP_ONLY_ITEM)["number"])
    _move(township, own, "under_review")
    _move(township, own, "denied")
    _move(township, own, "completed")


# -- listings ---------------------------------------------------------------------------------------


def test_listings_mask_id_numbers_and_phones_unless_revealed(world: World, v1: Station) -> None:
    app = good(world, v1)
    commands.accept(v1, app)
    world.accept(v1, IMMEDIATE_ITEM)
    (masked, _) = commands.applications(v1)
    assert masked["applicant_id"] == app.id_number[:6] + "*" * 8 + app.id_number[-4:]
    assert masked["applicant_phone"] == app.phone[:3] + "****" + app.phone[-4:]
    assert app.id_number not in json.dumps(commands.applications(v1), ensure_ascii=False)
    (shown, _) = commands.applications(v1, reveal=True)
    assert (shown["applicant_id"], shown["applicant_phone"]) == (app.id_number, app.phone)
    assert shown["applicant_name"] == masked["applicant_name"] == app.name
    assert [a["item"] for a in commands.applications(v1, "accepted")] == [TOWNSHIP_ITEM, IMMEDIATE_ITEM]
    assert commands.applications(v1, "completed") == []
    with pytest.raises(Refused):
        commands.applications(v1, "finished")


def test_listings_are_in_acceptance_order(world: World, v1: Station) -> None:
    first = world.accept(v1, TOWNSHIP_ITEM)
    back = commands.accept(
        v1,
        replace(
            good(world, v1), accepted_at=(datetime(2026, 3, 2, 9, 0, tzinfo=CHINA) - timedelta(days=3)).isoformat()
        ),
    )
    assert [a["number"] for a in commands.applications(v1)] == [back["number"], first["number"]]


# -- catalogue state --------------------------------------------------------------------------------


def test_a_station_keeps_accepting_after_its_catalogue_expires(world: World, v1: Station) -> None:
    """Freeze protection warns, it does not stop an offline station (DESIGN.md "Security")."""
    expires = v1.catalogue().expires_at
    world.clock.advance(181 * 24 * 60 * MINUTE_MS)
    assert iso_from_ms(world.clock()) > expires
    out = world.accept(v1, TOWNSHIP_ITEM)
    assert out["status"] == "accepted"
    assert v1.records.values("application", str(out["id"]))["catalogue_version"] == 1


def test_a_station_without_a_catalogue_refuses_to_accept(world: World, tmp_path: Path) -> None:
    bare = Station(tmp_path / "bare", clock=world.clock, create=True)
    try:
        with pytest.raises(Refused, match="no catalogue"):
            commands.accept(
                bare, Application(item=TOWNSHIP_ITEM, name="测试", id_number=make_id(1), phone="13900000001")
            )
        assert state(bare) == (0, 0, 0, 0)
    finally:
        bare.close()
