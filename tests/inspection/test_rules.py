"""The pure inspection rules: checklists, GPS judgement, and the paused due-date clock."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from sync.catalogue import parse_catalogue
from sync.inspection import (
    CHECKLIST_HEAD,
    GPS_UNKNOWN_ACCURACY,
    InspectionError,
    Position,
    checklist_for,
    checklist_results,
    extended_due_date,
    gps_flag,
    parse_gps,
    paused_working_days,
)
from sync.model import ENTITIES, check_value

CATALOGUE = json.loads(
    (Path(__file__).resolve().parents[2] / "sanji" / "data" / "catalogue-sample.json").read_text("utf-8")
)
CAT = parse_catalogue(CATALOGUE)


def test_checklist_is_the_fixed_head_then_each_required_material() -> None:
    item = CAT.items["360802-0004"]  # 最低生活保障申请
    lines = checklist_for(item)
    assert lines[: len(CHECKLIST_HEAD)] == list(CHECKLIST_HEAD)
    assert lines[len(CHECKLIST_HEAD) :] == [f"核对材料原件：{m.name}" for m in item.materials if m.required]
    assert checklist_for(item) == lines  # the same on every replica
    assert check_value(ENTITIES["task"]["checklist"].kind, lines)


def test_every_item_that_needs_inspection_gets_a_valid_checklist() -> None:
    for item in CAT.items.values():
        if item.inspection_required:
            assert check_value(ENTITIES["task"]["checklist"].kind, checklist_for(item))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("27.1167,114.9833", Position(27.1167, 114.9833, GPS_UNKNOWN_ACCURACY)),
        (" 27.1 , 114.9 , 12.5 ", Position(27.1, 114.9, 12.5)),
    ],
)
def test_parse_gps(text: str, expected: Position) -> None:
    assert parse_gps(text) == expected


@pytest.mark.parametrize("text", ["", "27.1", "a,b", "27,114,5,6", "91,114", "27,181", "nan,114", "27,114,-3"])
def test_parse_gps_refuses_what_is_not_a_position(text: str) -> None:
    with pytest.raises(InspectionError):
        parse_gps(text)


def test_implausible_positions_are_flagged_not_refused() -> None:
    assert gps_flag(Position(27.1167, 114.9833, 8.0)) == ""  # 吉州区
    assert gps_flag(Position(27.1167, 114.9833, GPS_UNKNOWN_ACCURACY)) == ""
    assert "outside China" in gps_flag(Position(40.7, -74.0, 5.0))
    assert "accuracy" in gps_flag(Position(27.1, 114.9, 800.0))
    both = gps_flag(Position(0.0, 0.0, 2000.0))
    assert "outside China" in both and "accuracy" in both
    assert check_value(ENTITIES["report"]["gps"].kind, Position(27.1, 114.9, 8.0).to_wire())


def test_checklist_results_default_to_the_result_with_overrides() -> None:
    lines = ["a", "b", "c"]
    assert checklist_results(lines, passed=True, overrides={}) == {"a": True, "b": True, "c": True}
    assert checklist_results(lines, passed=True, overrides={"2": False}) == {"a": True, "b": False, "c": True}
    assert checklist_results(lines, passed=False, overrides={"c": True}) == {"a": False, "b": False, "c": True}
    with pytest.raises(InspectionError):
        checklist_results(lines, passed=True, overrides={"4": True})


def test_the_clock_pauses_for_the_working_days_of_the_inspection() -> None:
    cal = CAT.calendar
    # Inspection from Monday 2 March 2026 to Friday 6 March: four working days (3, 4, 5, 6 March).
    assert paused_working_days(cal, date(2026, 3, 2), date(2026, 3, 6)) == 4
    assert paused_working_days(cal, date(2026, 3, 2), date(2026, 3, 2)) == 0
    assert paused_working_days(cal, date(2026, 3, 6), date(2026, 3, 2)) == 0  # never negative
    due = date(2026, 3, 20)
    assert extended_due_date(cal, due, 0) == due
    assert extended_due_date(cal, due, 4) == cal.add_working_days(due, 4) == date(2026, 3, 26)
    # The pause is measured in working days, so an inspection over the weekend adds only working days.
    assert paused_working_days(cal, date(2026, 3, 6), date(2026, 3, 9)) == 1
