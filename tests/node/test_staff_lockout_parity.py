"""The station's lock-out and the dashboard's, side by side (issue 16: "lock-out works as on the
dashboard"): the same threshold and window, and for the same attempts at the same moments the real
dashboard (``hub/dashboard/auth.py``, over a real hub store) and the real station sign-in
(``node/staff_accounts.py``) pause and release at the same moments and name the same number of
minutes to wait. ``test_staff_lockout.py`` checks the station's rule against a model of the
dashboard's SQL over many random sequences; this one checks it against the dashboard itself.

One address: a station's window is one PC, so the dashboard's per-address and cross-address rules
(20 failures) never come before the per-user-here one (5).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.dashboard import auth
from hub.service import Hub
from node import staff_accounts, staff_lockout
from replica.errors import Refused
from tests.conftest import HUB_ID, FakeClock
from tests.node.staff_helpers import ADMIN_PASSWORD, STATION, first_admin, station

REMOTE = "127.0.0.1"
MINUTE = 60_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hub(tmp_path: Path, clock: FakeClock) -> Iterator[Hub]:
    h = Hub.create(tmp_path / "hub", district=HUB_ID, name="测试区行政审批局", catalogue=None, clock=clock)
    yield h
    h.close()


def test_the_threshold_and_the_window_are_the_dashboards() -> None:
    assert staff_lockout.MAX_FAILURES == auth.MAX_FAILURES == 5
    assert staff_lockout.WINDOW_MS == auth.WINDOW_MS == 15 * MINUTE


def _minutes(message: str) -> int:
    found = re.search(r"请 (\d+) 分钟后再试", message)
    assert found is not None, message
    return int(found.group(1))


def dashboard_attempt(hub: Hub, user: str, right: bool) -> tuple[str, int]:
    """What the dashboard's login does with one attempt (``auth.login_submit``, without HTTP)."""
    paused = auth.lockout(hub, user, REMOTE)
    if paused is not None:
        return "paused", _minutes(paused.message())
    with hub.store.transaction():
        if right:
            auth.operators(hub).forget_failures(user, REMOTE)
        else:
            auth.record_failure(hub, user, REMOTE)
    return ("ok" if right else "wrong"), 0


def station_attempt(db, now: int, right: bool) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    password = ADMIN_PASSWORD if right else "not-the-password"
    try:
        staff_accounts.sign_in(db, station=STATION, user="admin", password=password, now_ms=now).end()
    except Refused as exc:
        if exc.code == "locked_out":
            return "paused", _minutes(str(exc))
        assert exc.code == "wrong_password", exc
        return "wrong", 0
    return "ok", 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_same_attempts_pause_and_release_both_at_the_same_moments(
    tmp_path: Path, hub: Hub, clock: FakeClock, seed: int
) -> None:
    db = station(tmp_path / "station")
    first_admin(db, now_ms=clock())
    rng = random.Random(seed)
    seen: set[str] = set()
    for step in range(60):
        clock.advance(rng.choice([0, 10_000, MINUTE, 3 * MINUTE, 7 * MINUTE]))
        right = rng.random() < 0.2
        ours, theirs = station_attempt(db, clock(), right), dashboard_attempt(hub, "admin", right)
        assert ours == theirs, f"attempt {step}: station {ours}, dashboard {theirs}"
        seen.add(ours[0])
    assert {"paused", "wrong", "ok"} <= seen, "each sequence reaches a pause and a release"
