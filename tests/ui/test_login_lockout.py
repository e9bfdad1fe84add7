"""The dashboard's login pause counts wrong guesses per user and per address.

A district hall reaches the hub from one address behind its NAT: one operator's typos must pause that
operator there, not the whole hall. Someone trying many user names from one address still gets the
address paused, at a higher threshold, and someone trying one user name from many addresses gets
that user name paused. Wrong logins cannot pile up rows either."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.dashboard import auth
from hub.passwords import hash_password
from hub.service import Hub
from tests.conftest import HUB_ID, FakeClock
from tests.ui.inproc import OPERATOR, Pair, login

COLLEAGUE, COLLEAGUE_PASSWORD = "wangfang", "another-horse-pw"
HALL = "198.51.100.7"  # the hall's one address behind its NAT


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str | None:
    """Where the hub keeps sessions and failures: sign-in pauses hold on either backend."""
    return str(request.getfixturevalue("pg_dsn")) if request.param == "postgres" else None


@pytest.fixture
def pair(tmp_path: Path, database: str | None) -> Iterator[Pair]:
    p = Pair(tmp_path, database=database)
    yield p
    p.close()


@pytest.fixture
def client(hub_client: TestClient[Any, Any], pair: Pair) -> TestClient[Any, Any]:
    with pair.hub.store.transaction():
        pair.hub.store.add_operator(COLLEAGUE, hash_password(COLLEAGUE_PASSWORD), pair.hub.clock())
    return hub_client


@pytest.fixture
def hub(tmp_path: Path, clock: FakeClock, database: str | None) -> Iterator[Hub]:
    h = Hub.create(
        tmp_path / "hub", district=HUB_ID, name="测试区行政审批局", catalogue=None, clock=clock, database=database
    )
    yield h
    h.close()


def fail(hub: Hub, user: str, remote: str, times: int = 1) -> None:
    with hub.store.transaction():
        for _ in range(times):
            auth.record_failure(hub, user, remote)


def rows(hub: Hub) -> int:
    return int(hub.store.conn.execute("SELECT COUNT(*) FROM dash_login_failures").fetchone()[0])


# -- over HTTP: the hall behind one address -----------------------------------------------------------


async def test_one_operators_typos_do_not_lock_a_colleague_out_of_the_same_address(
    client: TestClient[Any, Any],
) -> None:
    for _ in range(auth.MAX_FAILURES):
        assert (await login(client, password="typo-typo")).status == 401
    resp = await login(client)  # the right password, but paused
    assert resp.status == 429
    text = await resp.text()
    assert "登录失败次数过多" in text and "该用户在本机" in text and "分钟后再试" in text
    # The colleague at the next desk, same address, is not paused.
    resp = await login(client, user=COLLEAGUE, password=COLLEAGUE_PASSWORD)
    assert resp.status == 303 and "sanji_session" in resp.cookies
    # ... and the colleague's success does not lift the first operator's pause.
    client.session.cookie_jar.clear()  # the colleague leaves the shared PC
    assert (await login(client)).status == 429


async def test_many_wrong_guesses_across_user_names_pause_the_whole_address(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    names = [f"guess{n:02d}" for n in range(auth.MAX_ADDRESS_FAILURES)]
    assert auth.MAX_ADDRESS_FAILURES > auth.MAX_FAILURES
    for name in names[:-1]:
        assert (await login(client, user=name, password="x")).status == 401
    assert auth.lockout(pair.hub, COLLEAGUE, "127.0.0.1") is None, "not yet: below the address threshold"
    assert (await login(client, user=names[-1], password="x")).status == 401
    resp = await login(client, user=COLLEAGUE, password=COLLEAGUE_PASSWORD)
    assert resp.status == 429 and "sanji_session" not in resp.cookies
    assert "本机所在地址登录失败次数过多" in await resp.text()


async def test_a_flood_of_wrong_logins_adds_a_bounded_number_of_rows(client: TestClient[Any, Any], pair: Pair) -> None:
    for n in range(300):
        assert (await login(client, user=f"junk{n}", password="x")).status in (401, 429)
    assert rows(pair.hub) <= auth.MAX_ADDRESS_FAILURES


# -- the rules, on the hub's own clock ----------------------------------------------------------------


def test_a_pause_is_per_user_and_address(hub: Hub) -> None:
    fail(hub, OPERATOR, HALL, auth.MAX_FAILURES - 1)
    assert auth.lockout(hub, OPERATOR, HALL) is None
    fail(hub, OPERATOR, HALL)
    paused = auth.lockout(hub, OPERATOR, HALL)
    assert paused is not None and paused.scope == "user_here" and paused.wait_ms == auth.WINDOW_MS
    assert auth.lockout(hub, COLLEAGUE, HALL) is None
    assert auth.lockout(hub, OPERATOR, "203.0.113.5") is None  # the same operator elsewhere


def test_a_user_name_guessed_from_many_addresses_is_paused_everywhere(hub: Hub) -> None:
    for n in range(auth.MAX_USER_FAILURES):
        fail(hub, OPERATOR, f"203.0.113.{n}")
    paused = auth.lockout(hub, OPERATOR, HALL)
    assert paused is not None and paused.scope == "user"
    assert "来自多个地址" in paused.message()
    assert auth.lockout(hub, COLLEAGUE, "203.0.113.1") is None


def test_a_pause_ends_with_its_window_and_old_failures_are_dropped(hub: Hub, clock: FakeClock) -> None:
    fail(hub, OPERATOR, HALL, auth.MAX_ADDRESS_FAILURES)
    assert auth.lockout(hub, COLLEAGUE, HALL) is not None
    clock.advance(auth.WINDOW_MS)
    assert auth.lockout(hub, COLLEAGUE, HALL) is None and auth.lockout(hub, OPERATOR, HALL) is None
    fail(hub, COLLEAGUE, HALL)
    assert rows(hub) == 1, "failures past the window are removed when the next one is counted"
