"""Finding one's way: the catalogue commands list what a tier may accept with its materials, and
`hub show` reads as words, not raw JSON (issue 14 items 6 and 14)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.applicants import People

from .conftest import Hub, Node, catalogue_items
from .processes import SANJI, _env, ok

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)


def text(*args: object) -> str:
    run = subprocess.run([str(SANJI), *map(str, args)], capture_output=True, text=True, timeout=120, env=_env())
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_node_catalogue_lists_what_a_village_may_accept(new_village: Callable[[], Node]) -> None:
    v = new_village()
    doc = ok("node", "catalogue", v.dir)
    expected = [code for code, it in catalogue_items().items() if "village" in it["accepted_at"]]
    assert doc["version"] >= 1 and [i["code"] for i in doc["items"]] == expected
    low = next(i for i in doc["items"] if i["code"] == "360802-0004")
    assert low["inspection_required"] is True and low["promised_days"] == 20
    assert {"name": "家庭收入情况声明", "required": True, "deferrable": True} in low["materials"]
    shown = text("node", "catalogue", v.dir)
    assert "360802-0004  最低生活保障申请（承诺 20 个工作日，需现场踏勘）" in shown
    assert "○家庭收入情况声明" in shown and "●户口簿" in shown


def test_hub_catalogue_takes_a_tier(district_hub: Hub) -> None:
    district = ok("hub", "catalogue", district_hub.dir)
    village = ok("hub", "catalogue", district_hub.dir, "--tier", "village")
    assert district["tier"] == "district" and village["tier"] == "village"
    assert len(village["items"]) < len(district["items"]) or village["items"] != district["items"]


def test_hub_show_reads_as_words(new_village: Callable[[], Node], district_hub: Hub, people: People) -> None:
    v = new_village()
    number = v.accept(people)["number"]
    assert ok("node", "sync", v.dir)["pushed"] == 1
    shown = text("hub", "show", district_hub.dir, number)
    assert shown.startswith(f"办件 {number}  状态：")
    assert "申请人：" in shown and "经办记录：" in shown and "受理登记" in shown
    assert "{" not in shown, "no raw JSON"
    assert len(shown.splitlines()) < 40
