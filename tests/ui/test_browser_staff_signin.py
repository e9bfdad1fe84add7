"""Sign-in at the station window in a real browser (issue 16): a station with a staff account shows the
sign-in page first, a wrong password is refused on it, the signed-in person accepts an application and
the printed 受理通知书 names them as 受理人, an idle window locks and asks for the password again, and
sign-out ends the session. axe checks every page, the sign-in page included (tests/ui/a11y.py).

The station's window runs in this process on a thread of its own (``node.server.create_app``), so the
test moves the station's clock past the idle limit instead of waiting fifteen minutes.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from node.server import create_app
from tests.ui.conftest import ITEM_IMMEDIATE, District, free_port, make_id, sanji

pytestmark = pytest.mark.slow

PASSWORD = "zhangsan-window-1"


class Clock:
    """The real time plus whatever the test has skipped ahead."""

    def __init__(self) -> None:
        self.skipped_ms = 0

    def __call__(self) -> int:
        return int(time.time() * 1000) + self.skipped_ms


class Window:
    """`node serve`'s app for one folder, served on loopback from a thread with its own event loop."""

    def __init__(self, folder: Path, clock: Clock) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(folder, clock), daemon=True)

    def _run(self, folder: Path, clock: Clock) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(create_app(folder, 3600.0, clock=clock))
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def __enter__(self) -> Window:
        self.thread.start()
        assert self.ready.wait(30), "the station window did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def window(district: District, clock: Clock) -> Iterator[Window]:
    out = sanji(
        "node", "add-admin", str(district.node_dir), "--user", "zhangsan", "--name", "张三", stdin=PASSWORD + "\n"
    )
    assert out["user"] == "zhangsan"
    (district.node_dir / "staff.json").write_text('{"idle_minutes": 1}', "utf-8")
    with Window(district.node_dir, clock) as w:
        yield w


def sign_in(page: Any, password: str) -> None:
    page.fill("#user", "zhangsan")
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#signin-btn")


def test_sign_in_then_accept_and_the_receipt_names_the_accepting_person(page: Any, window: Window) -> None:
    page.goto(window.url + f"/accept/item/{ITEM_IMMEDIATE}")
    assert "/signin?next=" in page.url
    assert page.locator("h1").inner_text() != ""
    sign_in(page, "not-the-password")
    assert "密码不正确" in page.locator("#signin-error").inner_text()
    assert page.input_value("#user") == "zhangsan"

    sign_in(page, PASSWORD)
    assert page.url.endswith(f"/accept/item/{ITEM_IMMEDIATE}")  # back where the person was going
    assert page.locator("[data-staff]").inner_text() == "张三"
    page.fill("#name", "测试申请人丁")
    page.fill("#id_number", make_id(404))
    page.fill("#phone", "13907960404")
    page.fill("#address", "兴桥镇岗塘村4组")
    for row in page.locator("tr[data-material]").all():
        row.locator("label", has_text="已收取").click()
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/receipt\?n=.+"))
    assert page.locator("#accepted-by").inner_text() == "张三（zhangsan）"
    assert "受理人：张三（zhangsan）" in page.locator("#receipt").inner_text()

    with page.expect_navigation():
        page.click("#signout-btn")
    assert page.locator("#signin-notice").inner_text() == "已退出登录。"
    page.goto(window.url + "/applications")
    assert "/signin?next=" in page.url  # signed out: nothing shows without signing in again


def test_an_idle_window_locks_and_asks_for_the_password_again(page: Any, window: Window, clock: Clock) -> None:
    page.goto(window.url + "/")
    sign_in(page, PASSWORD)
    assert page.url == window.url + "/"
    clock.skipped_ms += 61_000  # one minute and a second without a request (staff.json: idle_minutes 1)
    page.goto(window.url + "/applications")
    assert "why=locked" in page.url
    assert "因长时间未操作，登录已锁定" in page.locator("#signin-notice").inner_text()
    sign_in(page, PASSWORD)
    assert page.url == window.url + "/applications"
    assert page.locator("[data-staff]").inner_text() == "张三"
