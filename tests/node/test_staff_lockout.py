"""The station's lock-out is the dashboard's rule (issue 16: "lock-out works as on the dashboard").

The model below restates ``hub/dashboard/auth.py``'s per-user rule in a few lines, from its SQL: every
failure is a row; a sign-in is paused while ``MAX_FAILURES`` or more rows lie inside the window, until
the oldest of the latest ``MAX_FAILURES`` leaves it; a paused attempt is not checked and not counted;
a success clears the user's rows. Random sequences of attempts must pause and release the station's
account at exactly the same moments, though the station keeps only the last few times in a row.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node import staff_lockout
from node.staff_lockout import MAX_FAILURES, WINDOW_MS

MINUTE = 60_000


class DashboardModel:
    def __init__(self) -> None:
        self.rows: list[int] = []

    def wait(self, now: int) -> int:
        inside = sorted((t for t in self.rows if t > now - WINDOW_MS), reverse=True)[:MAX_FAILURES]
        return inside[-1] + WINDOW_MS - now if len(inside) >= MAX_FAILURES else 0

    def attempt(self, now: int, right: bool) -> str:
        if self.wait(now):
            return "paused"
        if right:
            self.rows.clear()
            return "ok"
        self.rows = [t for t in self.rows if t > now - WINDOW_MS] + [now]
        return "wrong"


class Station:
    def __init__(self) -> None:
        self.times: tuple[int, ...] = ()

    def attempt(self, now: int, right: bool) -> str:
        if staff_lockout.wait_ms(self.times, now):
            return "paused"
        if right:
            self.times = ()
            return "ok"
        self.times = staff_lockout.after_failure(self.times, now).times
        return "wrong"


attempts = st.lists(
    # Mostly wrong passwords, so pauses happen often; gaps from none to six minutes.
    st.tuples(st.integers(min_value=0, max_value=6 * MINUTE), st.sampled_from([False, False, False, True])),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(attempts)
def test_the_station_pauses_and_releases_exactly_when_the_dashboard_would(steps: list[tuple[int, bool]]) -> None:
    model, station = DashboardModel(), Station()
    now = 1_000 * MINUTE
    for gap, right in steps:
        now += gap
        assert staff_lockout.wait_ms(station.times, now) == model.wait(now)
        assert station.attempt(now, right) == model.attempt(now, right)
        assert len(station.times) <= MAX_FAILURES  # the row keeps the last few, never a growing list


def test_the_fifth_failure_pauses_for_the_rest_of_the_window() -> None:
    times: tuple[int, ...] = ()
    for i in range(MAX_FAILURES - 1):
        failures = staff_lockout.after_failure(times, i * MINUTE)
        times = failures.times
        assert failures.locked_until_ms == 0
        assert staff_lockout.left_before_pause(times, i * MINUTE) == MAX_FAILURES - 1 - i
    fifth = staff_lockout.after_failure(times, 4 * MINUTE)
    assert fifth.locked_until_ms == WINDOW_MS  # the first failure, at 0, leaves the window then
    assert staff_lockout.wait_ms(fifth.times, 4 * MINUTE) == 11 * MINUTE
    assert staff_lockout.wait_ms(fifth.times, WINDOW_MS) == 0


def test_a_clock_set_back_never_pauses_longer_than_the_window() -> None:
    times = tuple(100 * MINUTE + i for i in range(MAX_FAILURES))
    assert staff_lockout.wait_ms(times, 0) == WINDOW_MS
    assert staff_lockout.minutes(1) == 1 and staff_lockout.minutes(WINDOW_MS) == 15
