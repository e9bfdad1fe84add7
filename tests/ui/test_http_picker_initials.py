"""The accept picker's pinyin initials (issue 19 item 10) are worked out in a child process, so the station
server never holds pypinyin's 55 MB table (node/ui/initials.py); the picker finds the same items as
before, and still does when the child cannot run."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.server import create_app
from node.ui.accept import warm_initials
from node.ui.initials import Initials
from present.pinyin import initials, initials_apart
from tests.sync.test_catalogue import CAT
from tests.ui.inproc import Pair

pytestmark = pytest.mark.slow

LOW_INCOME = "最低生活保障申请"


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(pair.root / "village", 3600.0), host="127.0.0.1")) as c:
        yield c


async def test_the_picker_finds_an_item_by_initials_from_the_child(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="node.ui.initials"):
        for q in ("zdshbz", "ZDSHBZ"):
            resp = await client.get("/accept", params={"q": q})
            html = await resp.text()
            assert resp.status == 200
            assert LOW_INCOME in html and "zdshbzsq" in html, q
            assert "残疾人证" not in html, q  # the filter ran: other items are not listed
    fallback = [r.getMessage() for r in caplog.records if r.name == "node.ui.initials"]
    assert not fallback, fallback  # the child answered


def test_the_child_gives_every_name_the_initials_this_process_would() -> None:
    names = [i.name for i in CAT.items.values()] + [t.name for t in CAT.themes.values()]
    assert len(names) > 20
    assert initials_apart(names) == [initials(n) for n in names]


async def test_without_the_child_the_picker_works_them_out_here(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))
    with caplog.at_level(logging.WARNING, logger="node.ui.initials"):
        lookup = await Initials().of([LOW_INCOME, "残疾人证申领受理"])
    assert lookup(LOW_INCOME) == "zdshbzsq" and lookup("残疾人证申领受理") == "cjrzslsl"
    assert any("本进程内计算" in r.getMessage() for r in caplog.records)


async def test_a_name_is_worked_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []

    def apart(names: list[str]) -> list[str]:
        asked.append(list(names))
        return [initials(n) for n in names]

    monkeypatch.setattr("present.pinyin.initials_apart", apart)
    known = Initials()
    await known.of([LOW_INCOME])
    lookup = await known.of([LOW_INCOME, "残疾人证申领受理"])
    assert asked == [[LOW_INCOME], ["残疾人证申领受理"]]  # a new release asks only for its new names
    assert lookup("残疾人证申领受理") == "cjrzslsl"


async def test_the_real_server_works_them_out_before_the_picker_is_opened(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str]] = []

    def apart(names: list[str]) -> list[str]:
        asked.append(list(names))
        return [initials(n) for n in names]

    monkeypatch.setattr("present.pinyin.initials_apart", apart)
    app = create_app(pair.root / "village", 3600.0)
    warm_initials(app)  # as node/server.py's serve does
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for _ in range(200):
            if asked:
                break
            await asyncio.sleep(0.02)
        assert len(asked) == 1 and LOW_INCOME in asked[0]  # at start, before any page was asked for
        html = await (await client.get("/accept", params={"q": "zdshbz"})).text()
        assert LOW_INCOME in html
    assert len(asked) == 1  # the picker used what the start worked out
