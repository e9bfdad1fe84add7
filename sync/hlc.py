"""Hybrid logical clock stamps.

A stamp is a single int, ``(wall_ms << 16) | counter``, so stamps order correctly as plain integers,
fit a SQLite INTEGER column and travel as one msgpack int. The wall part tracks physical time closely
enough to be shown to people; the counter keeps stamps strictly increasing when the physical clock
stalls, repeats or jumps backward.

The caller passes the physical time in; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

COUNTER_BITS = 16
MAX_COUNTER = (1 << COUNTER_BITS) - 1
# Stamps are stored in signed 64-bit SQLite columns, so the wall part must leave the sign bit clear.
MAX_WALL_MS = (1 << (63 - COUNTER_BITS)) - 1
MAX_STAMP = (MAX_WALL_MS << COUNTER_BITS) | MAX_COUNTER

# A station whose clock runs a few minutes fast is common (no NTP in a village office); one that is
# further ahead than this is more likely wrong than fast, and must not drag everyone's clock along.
DEFAULT_MAX_DRIFT_MS = 5 * 60 * 1000
# The hub is more lenient before quarantining a whole batch, since batches can sit in a relay for a
# while and the hub's own clock can be slightly behind too.
HUB_QUARANTINE_AHEAD_MS = 10 * 60 * 1000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Observation:
    """The outcome of merging a remote stamp: the new local stamp, and whether the remote was refused."""

    stamp: int
    too_far_ahead: bool


def pack_hlc(wall_ms: int, counter: int) -> int:
    if not 0 <= wall_ms <= MAX_WALL_MS:
        raise ValueError(f"wall time {wall_ms} ms is outside 0..{MAX_WALL_MS}")
    if not 0 <= counter <= MAX_COUNTER:
        raise ValueError(f"HLC counter {counter} is outside 0..{MAX_COUNTER}")
    return (wall_ms << COUNTER_BITS) | counter


def _check_stamp(h: int) -> None:
    if not 0 <= h <= MAX_STAMP:
        raise ValueError(f"HLC stamp {h} is outside 0..{MAX_STAMP}")


def wall_ms(h: int) -> int:
    _check_stamp(h)
    return h >> COUNTER_BITS


def counter(h: int) -> int:
    _check_stamp(h)
    return h & MAX_COUNTER


def tick(last: int, wall_ms: int) -> int:
    """The stamp for a local event: strictly after ``last``, and at ``wall_ms`` if the clock allows.

    A counter overflow carries into the wall part rather than wrapping, so the clock runs at most a
    millisecond ahead per 65,536 events in the same millisecond and never goes back.
    """
    _check_stamp(last)
    if wall_ms < 0:
        raise ValueError(f"wall time {wall_ms} ms is negative")
    last_wall = last >> COUNTER_BITS
    if wall_ms > last_wall:
        return pack_hlc(wall_ms, 0)
    last_counter = last & MAX_COUNTER
    if last_counter < MAX_COUNTER:
        return pack_hlc(last_wall, last_counter + 1)
    return pack_hlc(last_wall + 1, 0)


def is_too_far_ahead(stamp: int, wall_ms: int, max_drift_ms: int) -> bool:
    """Whether ``stamp`` claims a time more than ``max_drift_ms`` past our physical clock."""
    _check_stamp(stamp)
    if max_drift_ms < 0:
        raise ValueError("max_drift_ms must not be negative")
    return (stamp >> COUNTER_BITS) - wall_ms > max_drift_ms


def observe(last: int, remote: int, wall_ms: int, *, max_drift_ms: int) -> Observation:
    """Merge a stamp seen on a remote change into the local clock.

    An acceptable remote stamp pulls the clock forward so that anything we write next sorts after
    what we have seen. One too far ahead is ignored (the local clock only ticks): otherwise a single
    station with a wrong clock would make every later write, everywhere, carry its bogus time and win
    every last-writer-wins conflict until real time caught up.
    """
    if is_too_far_ahead(remote, wall_ms, max_drift_ms):
        return Observation(stamp=tick(last, wall_ms), too_far_ahead=True)
    _check_stamp(last)
    return Observation(stamp=tick(max(last, remote), wall_ms), too_far_ahead=False)


def hlc_to_iso(h: int, tz_offset_minutes: int = 480) -> str:
    """The wall part of ``h`` as ISO 8601 with a fixed offset (default UTC+8), for display only."""
    zone = timezone(timedelta(minutes=tz_offset_minutes))
    moment = _EPOCH + timedelta(milliseconds=wall_ms(h))
    return moment.astimezone(zone).isoformat(timespec="milliseconds")
