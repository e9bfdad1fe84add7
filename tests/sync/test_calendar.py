"""Working-day facts from the 2026 calendar in the sample catalogue, and the counting rules."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.calendar import CalendarError, WorkCalendar

# The project's copy of the sample catalogue when it has one, else the shared original.
_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = next(
    (
        p
        for p in (
            _ROOT / "sanji" / "data" / "catalogue-sample.json",
            _ROOT.parent / "shared" / "data" / "catalogue-sample.json",
        )
        if p.exists()
    ),
    _ROOT.parent / "shared" / "data" / "catalogue-sample.json",
)
CAL_2026 = WorkCalendar.from_catalogue(json.loads(SAMPLE.read_text(encoding="utf-8"))["calendar"])


@pytest.fixture
def cal() -> WorkCalendar:
    return CAL_2026


def test_national_day_week_is_off_and_its_makeup_saturday_is_on(cal: WorkCalendar) -> None:
    for day in range(1, 8):
        assert not cal.is_working_day(date(2026, 10, day))
    assert date(2026, 10, 10).weekday() == 5  # a Saturday...
    assert cal.is_working_day(date(2026, 10, 10))  # ...worked in exchange
    assert cal.is_working_day(date(2026, 9, 20))  # a Sunday, likewise


def test_spring_festival(cal: WorkCalendar) -> None:
    assert cal.is_working_day(date(2026, 2, 14))  # Saturday, make-up working day
    assert not cal.is_working_day(date(2026, 2, 16))  # Monday, holiday
    assert not cal.is_working_day(date(2026, 2, 23))


def test_ordinary_days(cal: WorkCalendar) -> None:
    assert cal.is_working_day(date(2026, 3, 2))  # Monday
    assert not cal.is_working_day(date(2026, 3, 7))  # Saturday
    assert not cal.is_working_day(date(2026, 3, 8))  # Sunday


def test_due_dates_across_holidays(cal: WorkCalendar) -> None:
    # Wed 30 Sep; 1-7 Oct are holidays, so the first working day after acceptance is Thu 8 Oct.
    assert cal.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    # 8 (Thu), 9 (Fri), 10 (make-up Saturday): three working days.
    assert cal.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    # Fri 13 Feb: the next day is the make-up Saturday.
    assert cal.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    # Sat 14 Feb (worked) then the holiday runs to Mon 23 Feb; Tue 24 Feb is next.
    assert cal.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)
    # Acceptance day itself never counts, even when it is a working day.
    assert cal.add_working_days(date(2026, 3, 2), 1) == date(2026, 3, 3)


def test_zero_days_is_the_start_even_on_a_holiday(cal: WorkCalendar) -> None:
    assert cal.add_working_days(date(2026, 10, 3), 0) == date(2026, 10, 3)
    with pytest.raises(ValueError):
        cal.add_working_days(date(2026, 10, 3), -1)


def test_working_days_in_2026(cal: WorkCalendar) -> None:
    # 261 weekdays, 19 of them holidays (1 Jan counted), plus 6 make-up weekend days.
    assert cal.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 248
    assert cal.working_days_between(date(2026, 9, 30), date(2026, 10, 8)) == 1
    assert cal.working_days_between(date(2026, 10, 8), date(2026, 9, 30)) == -1
    assert cal.working_days_between(date(2026, 5, 5), date(2026, 5, 5)) == 0


def test_coverage_and_the_weekend_fallback(cal: WorkCalendar) -> None:
    assert cal.covers(date(2026, 6, 1))
    assert not cal.covers(date(2027, 1, 1))
    # Outside the published years only weekends are known: New Year's Day 2027 (a Friday) counts.
    assert cal.is_working_day(date(2027, 1, 1))
    assert not cal.is_working_day(date(2027, 1, 2))
    assert cal.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 1)


DAYS = st.dates(min_value=date(2025, 6, 1), max_value=date(2027, 6, 30))


def _naive_between(c: WorkCalendar, a: date, b: date) -> int:
    n, d = 0, a
    while d < b:
        d += timedelta(days=1)
        n += c.is_working_day(d)
    return n


@given(DAYS, st.integers(min_value=0, max_value=80))
def test_between_inverts_add(start: date, n: int) -> None:
    due = CAL_2026.add_working_days(start, n)
    assert CAL_2026.working_days_between(start, due) == n
    assert n == 0 or CAL_2026.is_working_day(due)


@given(DAYS, DAYS)
def test_between_agrees_with_counting_day_by_day(a: date, b: date) -> None:
    lo, hi = min(a, b), max(a, b)
    expected = _naive_between(CAL_2026, lo, hi)
    assert CAL_2026.working_days_between(lo, hi) == expected
    assert CAL_2026.working_days_between(hi, lo) == -expected


def test_round_trips_to_catalogue_form(cal: WorkCalendar) -> None:
    raw = json.loads(SAMPLE.read_text(encoding="utf-8"))["calendar"]
    assert cal.to_catalogue() == {year: {k: sorted(v) for k, v in entry.items()} for year, entry in raw.items()}
    assert WorkCalendar.from_catalogue(cal.to_catalogue()) == cal


@pytest.mark.parametrize(
    ("cal_doc", "problem"),
    [
        ({"2026": {"holidays": [], "makeup_workdays": ["2026-10-09"]}}, "not a Saturday or Sunday"),
        ({"2026": {"holidays": ["2027-01-01"], "makeup_workdays": []}}, "not in 2026"),
        ({"2026": {"holidays": ["2026-02-30"], "makeup_workdays": []}}, "not a valid"),
        ({"2026": {"holidays": ["20260101"], "makeup_workdays": []}}, "YYYY-MM-DD"),
        ({"2026": {"holidays": ["2026-10-10"], "makeup_workdays": ["2026-10-10"]}}, "both"),
        ({"2026": {"holidays": ["2026-10-01", "2026-10-01"], "makeup_workdays": []}}, "twice"),
        ({"2026": {"holidays": []}}, "makeup_workdays is missing"),
        ({"2026": {"holidays": [], "makeup_workdays": [], "extra": []}}, "unknown keys"),
        ({"26": {"holidays": [], "makeup_workdays": []}}, "four-digit year"),
        ({"2026": {"holidays": "2026-10-01", "makeup_workdays": []}}, "must be a list"),
    ],
)
def test_malformed_calendars_are_refused(cal_doc: dict[str, dict[str, list[str]]], problem: str) -> None:
    with pytest.raises(CalendarError, match=problem):
        WorkCalendar.from_catalogue(cal_doc)
