"""补交材料 as staff meet it: `sanji node supplement` and `sanji hub supplement` (exit codes, Chinese
output, `--json`), the morning report's "容缺材料逾期" clearing, the history, the receipt reprint and
`hub show`. Applicants are generated (tests.conftest.People)."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import pytest

from hub import nightly, nightly_facts, operations
from hub.service import Hub
from node import commands
from node.station import Station
from node.ui.receipt import receipt_view
from present.webui import describe
from replica.supplement import today
from sanji.cli import main as sanji
from tests.conftest import World

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"
ITEM = "360802-0009"  # 高龄津贴申领: the bank card may be deferred (容缺)
CARD = "银行卡"


def _overdue(hub: Hub) -> list[tuple[str, str]]:
    far = date.today() + timedelta(days=60)  # every 容缺 due date has passed by then
    nightly_facts.refresh(hub)  # the tables the nightly job keeps, brought up to the log as its run does
    return [(str(m["number"]), str(m["material"])) for m in nightly.deadline_warnings(hub, far)["materials_overdue"]]


@pytest.fixture
def village(world: World) -> Station:
    world.clock.ms = int(time.time() * 1000)  # the CLI below stamps with the real clock; the hub must agree
    world.station(TOWNSHIP, "township")
    return world.station(VILLAGE, "village", TOWNSHIP)


def test_a_station_records_a_deferred_material_and_the_warning_clears(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    out = world.accept(village, ITEM, deferred=[CARD])
    number, app_id = str(out["number"]), str(out["id"])
    world.push(village)
    assert _overdue(world.hub) == [(number, CARD)]
    folder = str(world.root / VILLAGE)
    village.close()

    # A name that is not one of this file's deferred materials: refused, with what is owed, nothing written.
    assert sanji(["node", "supplement", folder, number, "--material", "户口簿"]) == 2
    err = capsys.readouterr().err
    assert "不是该办件的容缺材料" in err and f"待补材料：{CARD}" in err

    assert sanji(["node", "supplement", folder, number, "--material", CARD, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    day = today(int(time.time() * 1000))
    assert {k: doc[k] for k in ("number", "materials", "outstanding")} == {
        "number": number,
        "materials": [CARD],
        "outstanding": [],
    }
    assert doc["received"] == day

    assert sanji(["node", "supplement", folder, number, "--material", CARD, "--json"]) == 2  # once is enough
    failed = capsys.readouterr()
    assert f"已于 {day} 登记补交" in failed.err
    assert json.loads(failed.out)["error"] == "already_supplemented"  # one document under --json too

    st = Station(world.root / VILLAGE, clock=world.clock)
    world.stations.append(st)
    assert st.records.values("application", app_id)[f"m.{CARD}"] == ["supplemented", day]
    # The history, the receipt reprint and the hub after the next sync.
    lines = [line for h in st.records.history(app_id) for line in describe(str(h["entity"]), h["fields"])]
    assert f"材料「{CARD}」：已补交（{day} 收到）" in lines
    receipt = receipt_view(st, [number])["entries"][0]
    assert receipt["supplemented"] == [(CARD, day)] and receipt["owed"] == []
    acks = world.push(st)
    assert all(a.quarantined == 0 for a in acks)
    assert _overdue(world.hub) == []
    shown = operations.show(world.hub, number)["materials"]
    assert shown[CARD] == {"state": "supplemented", "due": "", "received": day}  # type: ignore[index]


def test_the_human_output_says_what_is_still_owed(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    number = str(world.accept(village, ITEM, deferred=[CARD])["number"])
    village.close()
    accepted = today(int(time.time() * 1000))
    assert (
        sanji(["node", "supplement", str(world.root / VILLAGE), number, "--material", CARD, "--received", accepted])
        == 0
    )
    text = capsys.readouterr().out
    assert f"已登记补交 {number}：{CARD}（{accepted} 收到）" in text and "容缺材料已全部补齐" in text


def test_a_closed_file_takes_no_more_materials(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    number = str(world.accept(village, ITEM, deferred=[CARD])["number"])
    commands.transition(village, number, "withdrawn")
    village.close()
    assert sanji(["node", "supplement", str(world.root / VILLAGE), number, "--material", CARD]) == 2
    err = capsys.readouterr().err
    assert "办件已「撤回」，不再登记补交材料" in err and "本站不能写入" not in err  # the command says so itself


def test_a_date_before_acceptance_is_refused(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    number = str(world.accept(village, ITEM, deferred=[CARD])["number"])
    village.close()
    args = ["node", "supplement", str(world.root / VILLAGE), number, "--material", CARD, "--received", "2020-01-01"]
    assert sanji(args) == 2
    assert "早于受理日期" in capsys.readouterr().err


def test_the_hub_records_a_material_brought_to_the_district_hall(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    out = world.accept(village, ITEM, deferred=[CARD])
    number, app_id = str(out["number"]), str(out["id"])
    world.push(village)
    world.hub.close()
    hub_dir = str(world.root / "hub")
    assert sanji(["hub", "supplement", hub_dir, number, "--material", CARD, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["materials"], doc["outstanding"]) == ([CARD], [])
    assert sanji(["hub", "supplement", hub_dir, number, "--material", "居民身份证"]) == 2
    assert "不是该办件的容缺材料" in capsys.readouterr().err
    world.hub = Hub.open(world.root / "hub", clock=world.clock)
    assert _overdue(world.hub) == []
    world.pull(village)  # the station learns it through its feed
    assert village.records.values("application", app_id)[f"m.{CARD}"] == ["supplemented", doc["received"]]
    assert '"supplemented"' in json.dumps(operations.show(world.hub, number), ensure_ascii=False)
