"""Application numbers (办件编号): made at an offline station, unique without asking anyone.

A number is ``{station}-{YYYYMMDD}-{counter:05d}``, or ``{station}-{YYYYMMDD}-E{epoch}-{counter:05d}``
after the station's first epoch. Uniqueness is by construction, not by coordination:

- the station code is unique in the district (the hub enrols it);
- the counter is per station and per epoch, strictly increasing, never reset at midnight, so the
  date is for people (it tells staff when the application came in) and takes no part in uniqueness;
- a station restored from a backup may have lost the tail of its counter, so it starts a new epoch;
  counters may then repeat, but the ``E{epoch}`` part makes the numbers differ. Epoch 1 is written
  without it, so the everyday number stays short enough to read out over the phone.

Formatting is injective: reading from the right, the last segment is the counter, the one before is
either ``E{epoch}`` or the 8-digit date (never both shapes), and the rest is the station. Parsing
accepts only the canonical form, so each number has exactly one spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_STATION = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


def is_station_code(code: str) -> bool:
    """Codes that can number applications and sign batches: letters and digits in hyphenated parts."""
    return len(code) <= 64 and _STATION.fullmatch(code) is not None


_NUMBER = re.compile(
    r"(?P<station>[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)"
    r"-(?P<day>[0-9]{8})"
    r"(?:-E(?P<epoch>[1-9][0-9]*))?"
    r"-(?P<counter>[0-9]{5,})"
)


@dataclass(frozen=True)
class ApplicationNumber:
    station: str
    day: date
    epoch: int
    counter: int

    def __str__(self) -> str:
        return application_number(self.station, self.day, self.epoch, self.counter)


def application_number(station: str, day: date, epoch: int, counter: int) -> str:
    """Format an application number; raises ValueError on arguments that would break uniqueness."""
    if not _STATION.fullmatch(station):
        raise ValueError(f"station code {station!r} must be letters and digits, optionally hyphenated")
    if epoch < 1:
        raise ValueError(f"epoch must be at least 1, got {epoch}")
    if counter < 1:
        raise ValueError(f"counter must be at least 1, got {counter}")
    # Formatted by hand: strftime pads years below 1000 differently across platforms.
    stamp = f"{day.year:04d}{day.month:02d}{day.day:02d}"
    if epoch == 1:
        return f"{station}-{stamp}-{counter:05d}"
    return f"{station}-{stamp}-E{epoch}-{counter:05d}"


def parse_application_number(s: str) -> ApplicationNumber:
    """The inverse of ``application_number``; raises ValueError for anything not in canonical form."""
    m = _NUMBER.fullmatch(s)
    if m is None:
        raise ValueError(f"{s!r} is not an application number (station-YYYYMMDD-[E<epoch>-]NNNNN)")
    raw_day = m["day"]
    try:
        day = date(int(raw_day[:4]), int(raw_day[4:6]), int(raw_day[6:]))
    except ValueError:
        raise ValueError(f"{s!r} has an impossible date {raw_day}") from None
    epoch = int(m["epoch"]) if m["epoch"] is not None else 1
    counter = int(m["counter"])
    if counter < 1:
        raise ValueError(f"{s!r} has counter 0; counters start at 1")
    parsed = ApplicationNumber(m["station"], day, epoch, counter)
    # The round trip refuses non-canonical spellings ("E1", extra leading zeros), so that one
    # application cannot be known under two numbers.
    if str(parsed) != s:
        raise ValueError(f"{s!r} is not in canonical form (expected {parsed})")
    return parsed
