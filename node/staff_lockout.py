"""When a station account stops accepting passwords after wrong guesses, and for how long.

The rule is the dashboard's (``hub/dashboard/auth.py``, read, not imported: node/ never imports hub/):
``MAX_FAILURES`` wrong passwords for one user inside a sliding ``WINDOW_MS`` pause that user's sign-in
until the oldest of those failures leaves the window, whatever password comes meanwhile. A success
clears the user's own failures. The dashboard also counts per client address (20) and per user name
across addresses (20), because a hall's operators share one address behind NAT; a station's window is
one machine, so its only address is itself and the per-user rule at 5 is the one that ever applies.

Pure functions over the failure times kept in the account's row (``node/staff_schema.py``), with the
time handed in, so the tests can walk the window without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_FAILURES = 5
WINDOW_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class Failures:
    """The failure times still inside the window (at most ``MAX_FAILURES``, oldest first) and until
    when the account is paused (0: not paused)."""

    times: tuple[int, ...]
    locked_until_ms: int

    @property
    def count(self) -> int:
        return len(self.times)


def _recent(times: tuple[int, ...], now_ms: int) -> tuple[int, ...]:
    return tuple(t for t in sorted(times) if t > now_ms - WINDOW_MS)


def after_failure(times: tuple[int, ...], now_ms: int) -> Failures:
    """The state after one more wrong password at ``now_ms``. Only the latest ``MAX_FAILURES`` matter:
    the pause ends when the oldest of them leaves the window, as on the dashboard."""
    recent = (*_recent(times, now_ms), now_ms)[-MAX_FAILURES:]
    until = recent[0] + WINDOW_MS if len(recent) >= MAX_FAILURES else 0
    return Failures(recent, until)


def wait_ms(times: tuple[int, ...], now_ms: int) -> int:
    """How long sign-in stays paused from ``now_ms`` (0: not paused). Never longer than the window,
    even when the station's clock was set back after the failures were recorded."""
    recent = _recent(times, now_ms)[-MAX_FAILURES:]
    if len(recent) < MAX_FAILURES:
        return 0
    return min(WINDOW_MS, max(0, recent[0] + WINDOW_MS - now_ms))


def left_before_pause(times: tuple[int, ...], now_ms: int) -> int:
    """How many more wrong passwords the account takes before it is paused."""
    return max(0, MAX_FAILURES - len(_recent(times, now_ms)))


def minutes(ms: int) -> int:
    """A wait in whole minutes, rounded up, never 0 (staff read "1 分钟", not "0 分钟")."""
    return max(1, -(-ms // 60_000))
