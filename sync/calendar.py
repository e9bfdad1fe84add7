"""The working-day calendar (工作日) that every due date is counted in.

Statutory and promised time limits are in working days. Which days are working days is not a
fixed rule: each year the State Council moves public holidays around and declares some weekend days
working days (调休). The hub carries that list in every catalogue release, so all replicas count
due dates the same way, offline, from the same data.

Counting convention (the one Chinese service halls use for 承诺时限): the day of acceptance does not
count; the limit runs from the next working day, and the due date is the n-th working day *after*
the start date. So a one-day item accepted on a Wednesday is due on Thursday, and one accepted on
the eve of a holiday week is due on the first working day after it. ``add_working_days(d, 0)`` is
``d`` itself (immediate items are due the day they are accepted), whether or not ``d`` is a working
day. ``working_days_between(a, b)`` counts the working days in the half-open span ``(a, b]``, which
makes it the inverse of ``add_working_days`` whenever the result lands on a working day.

Outside the years a release covers we can only assume plain weekends. That guess is made
explicit: ``covers(d)`` says whether ``d`` is inside the published data, so callers can warn staff
that a due date past the end of the calendar may move when next year's holidays are published.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from protocol.errors import SanjiError

_SATURDAY = 5  # date.weekday(): Monday is 0


# Also a ValueError: callers wrote `except ValueError` for it before it joined SanjiError.
class CalendarError(SanjiError, ValueError):
    """The calendar data in a catalogue release is malformed."""

    default_code = "invalid_calendar"


def _is_weekend(d: date) -> bool:
    return d.weekday() >= _SATURDAY


def _weekdays_up_to(d: date) -> int:
    """Monday-to-Friday days in (epoch, d], for an arbitrary fixed epoch (a Sunday).

    Differences of this function count weekdays in a half-open span in O(1), so spans of years cost
    no more than spans of days.
    """
    ordinal = d.toordinal()  # ordinal 7 is a Sunday (0001-01-07)
    weeks, rest = divmod(ordinal - 7, 7)
    # rest days after a Sunday: Mon..Sat; Saturday (rest == 6) adds nothing.
    return weeks * 5 + min(rest, 5)


@dataclass(frozen=True)
class WorkCalendar:
    """Public holidays and make-up working days for the years a catalogue release covers."""

    years: frozenset[int] = frozenset()
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    # Sorted copies for range queries; derived, so left out of equality and repr.
    _holidays_sorted: tuple[date, ...] = field(default=(), init=False, repr=False, compare=False)
    _makeup_sorted: tuple[date, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        clash = self.holidays & self.makeup_workdays
        if clash:
            raise CalendarError(f"dates both holiday and make-up working day: {_fmt(clash)}")
        outside = {d for d in self.holidays | self.makeup_workdays if d.year not in self.years}
        if outside:
            raise CalendarError(f"dates outside the calendar's years: {_fmt(outside)}")
        object.__setattr__(self, "_holidays_sorted", tuple(sorted(self.holidays)))
        object.__setattr__(self, "_makeup_sorted", tuple(sorted(self.makeup_workdays)))

    @classmethod
    def from_catalogue(cls, cal: Mapping[str, Mapping[str, list[str]]]) -> WorkCalendar:
        """Build from a release's ``calendar``: ``{"2026": {"holidays": [...], "makeup_workdays": [...]}}``.

        Strict, because a typo here silently shifts due dates for a whole district.
        """
        if not isinstance(cal, Mapping):
            raise CalendarError("calendar must be a mapping of years")
        years: set[int] = set()
        holidays: set[date] = set()
        makeup: set[date] = set()
        for year_key, entry in cal.items():
            if not (isinstance(year_key, str) and len(year_key) == 4 and year_key.isdigit()):
                raise CalendarError(f"calendar year {year_key!r} is not a four-digit year")
            year = int(year_key)
            if not isinstance(entry, Mapping):
                raise CalendarError(f"calendar {year_key} must be a mapping")
            extra = set(entry) - {"holidays", "makeup_workdays"}
            if extra:
                raise CalendarError(f"calendar {year_key} has unknown keys {sorted(extra)}")
            days = {
                name: _parse_dates(entry.get(name), f"calendar {year_key} {name}", year)
                for name in ("holidays", "makeup_workdays")
            }
            for d in days["makeup_workdays"]:
                # A make-up working day only means something on a weekend; on a weekday it is
                # almost certainly a typo for a neighbouring date.
                if not _is_weekend(d):
                    raise CalendarError(
                        f"calendar {year_key} makeup_workdays: {d.isoformat()} is not a Saturday or Sunday"
                    )
            years.add(year)
            holidays |= days["holidays"]
            makeup |= days["makeup_workdays"]
        return cls(frozenset(years), frozenset(holidays), frozenset(makeup))

    def to_catalogue(self) -> dict[str, dict[str, list[str]]]:
        """The inverse of ``from_catalogue``: ISO date strings, sorted, one entry per year."""
        return {
            str(year): {
                "holidays": [d.isoformat() for d in self._holidays_sorted if d.year == year],
                "makeup_workdays": [d.isoformat() for d in self._makeup_sorted if d.year == year],
            }
            for year in sorted(self.years)
        }

    def covers(self, d: date) -> bool:
        """Whether ``d`` lies in a year the release publishes; outside, only weekends are known."""
        return d.year in self.years

    def is_working_day(self, d: date) -> bool:
        if d in self.holidays:
            return False
        if d in self.makeup_workdays:
            return True
        return not _is_weekend(d)

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start`` (``start`` itself does not count); ``start`` when n == 0."""
        if n < 0:
            raise ValueError(f"working days must not be negative, got {n}")
        d = start
        remaining = n
        # Time limits are at most a few hundred days; a day-by-day walk is clear and cheap enough.
        while remaining:
            d += timedelta(days=1)
            if self.is_working_day(d):
                remaining -= 1
        return d

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b]; negative (the count in (b, a]) when b is before a.

        Used for "days left" and "days overdue": the sign says which side of the due date we are.
        """
        if b < a:
            return -self.working_days_between(b, a)
        count = _weekdays_up_to(b) - _weekdays_up_to(a)
        count -= sum(1 for d in self._in_span(self._holidays_sorted, a, b) if not _is_weekend(d))
        count += sum(1 for d in self._in_span(self._makeup_sorted, a, b) if _is_weekend(d))
        return count

    @staticmethod
    def _in_span(days: tuple[date, ...], a: date, b: date) -> tuple[date, ...]:
        return days[bisect_right(days, a) : bisect_right(days, b)]


def _parse_dates(raw: object, where: str, year: int) -> set[date]:
    if raw is None:
        raise CalendarError(f"{where} is missing (use [] when there are none)")
    if not isinstance(raw, list):
        raise CalendarError(f"{where} must be a list of YYYY-MM-DD dates")
    out: set[date] = set()
    for item in raw:
        if not isinstance(item, str):
            raise CalendarError(f"{where}: {item!r} is not a date string")
        try:
            d = date.fromisoformat(item)
        except ValueError:
            raise CalendarError(f"{where}: {item!r} is not a valid YYYY-MM-DD date") from None
        if len(item) != 10:
            raise CalendarError(f"{where}: {item!r} is not in YYYY-MM-DD form")
        if d.year != year:
            raise CalendarError(f"{where}: {item} is not in {year}")
        if d in out:
            raise CalendarError(f"{where}: {item} is listed twice")
        out.add(d)
    return out


def _fmt(days: set[date] | frozenset[date]) -> str:
    return ", ".join(d.isoformat() for d in sorted(days))
