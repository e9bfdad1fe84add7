"""Sign-in's scrypt runs off the station window's event loop (issue 16): while one person's password is
being checked, the loop keeps turning, so another browser's request is answered and the background
sync is not paused.

No timing is measured: the password check is held on its worker thread until the loop has answered
another request, which it could not do if the check ran on the loop (the hold would then run out,
and the test says so).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node import staff_accounts
from node.server import create_app
from tests.node.staff_helpers import STAFF_PASSWORD, with_staff
from tests.ui.inproc import Pair, csrf_of

pytestmark = pytest.mark.slow

HOLD_S = 20.0  # only a fail-safe: the loop answers long before, unless sign-in blocks it


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[TestClient[Any, Any]]:
    with_staff(pair.st.db, pair.st.code)
    async with TestClient(TestServer(create_app(pair.root / "village", 3600.0), host="127.0.0.1")) as c:
        yield c


async def test_the_loop_answers_other_requests_while_a_password_is_checked(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = staff_accounts.check_password
    entered, released = threading.Event(), threading.Event()
    checked_on: list[str] = []
    held_until_released: list[bool] = []

    def held_check(password: str, stored: str) -> bool:
        checked_on.append(threading.current_thread().name)
        entered.set()
        held_until_released.append(released.wait(HOLD_S))
        return real(password, stored)

    monkeypatch.setattr(staff_accounts, "check_password", held_check)
    page = await client.get("/signin")
    form = {"csrf": csrf_of(await page.text()), "user": "zhangsan", "password": STAFF_PASSWORD, "next": "/"}
    signing_in = asyncio.ensure_future(client.post("/signin", data=form, allow_redirects=False))

    while not entered.is_set():  # the loop turns while the check waits on its thread
        await asyncio.sleep(0.01)
    other = await client.get("/status.json")  # another browser's poll, answered meanwhile
    assert other.status == 200
    released.set()

    resp = await signing_in
    assert resp.status == 303 and resp.headers["Location"] == "/", "the sign-in itself still succeeds"
    assert held_until_released == [True], "the password check was still waiting when the loop answered"
    assert checked_on and checked_on[0] != threading.main_thread().name
    assert (await client.get("/", allow_redirects=False)).status == 200, "signed in"
