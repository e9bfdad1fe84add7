"""Items that need an on-site inspection (需现场踏勘) as staff meet them (issue 14, items 2 and 3): the
address is required at acceptance (the command, and the hub's admission of a new application); no
approval before a report is in unless an override with a reason is given, which the history keeps;
a 合格 report with a checklist line answered 否 is flagged. Applicants are generated."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from hub import inspection as hub_inspection
from hub import operations
from hub.admission import Gate
from hub.feed import Lookup
from hub.service import Hub
from node import commands
from node.station import Station
from protocol.codec import unpack
from replica.errors import Refused
from sanji.cli import main as sanji
from sync.change import Change
from sync.model import Actor
from tests.conftest import World, materials

TOWNSHIP, VILLAGE, DEVICE = "360802-T01", "360802-T01-05", "360802-F01"
SITE_ITEM = "360802-0004"  # 最低生活保障申请: decided at the district, inspection required
TOWNSHIP_SITE_ITEM = "360802-0006"  # 临时救助申请: decided by the township, inspection required
REASON = "上月已踏勘同一住址，见踏勘报告"


@pytest.fixture
def district(world: World) -> World:
    world.clock.ms = int(time.time() * 1000)  # the CLI below stamps with the real clock; the hub must agree
    world.station(TOWNSHIP, "township")
    world.station(VILLAGE, "village", TOWNSHIP)
    world.station(DEVICE, "field")
    return world


def _under_review(world: World, item: str = SITE_ITEM) -> str:
    village = world.get(VILLAGE)
    number = str(world.accept(village, item)["number"])
    world.push(village)
    operations.transition(world.hub, number, "under_review")
    return number


def _events(hub: Hub, number: str) -> list[dict[str, object]]:
    shown = operations.show(hub, number)
    return [e["fields"] for e in shown["events"] if e["entity"] == "event"]  # type: ignore[attr-defined,index,misc]


def test_an_inspection_item_needs_the_address_at_acceptance(
    district: World, capsys: pytest.CaptureFixture[str]
) -> None:
    village = district.get(VILLAGE)
    p = district.people.applicant()
    args = ["node", "accept", str(district.root / VILLAGE), "--item", SITE_ITEM, "--name", p["name"]]
    args += ["--id-number", p["id_number"], "--phone", p["phone"]]
    for m in materials(village, SITE_ITEM):
        args += ["--material", m]
    village.close()
    assert sanji(args) == 2
    assert "「最低生活保障申请」需现场踏勘，请填写地址" in capsys.readouterr().err
    assert sanji([*args, "--address", "兴桥镇塅口村3组", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "accepted"


def test_the_hub_refuses_a_new_application_without_the_address(district: World) -> None:
    village = district.get(VILLAGE)
    made = district.accept(village, SITE_ITEM)
    o, e, s, h, ent, rid, f, b = village.conn.execute(
        "SELECT origin, epoch, seq, hlc, entity, rid, fields, base FROM changes WHERE rid=?", (made["id"],)
    ).fetchone()
    honest = Change(o, e, s, h, ent, rid, unpack(f), unpack(b))  # type: ignore[arg-type]
    gate = Gate(district.hub, Lookup(district.hub))
    assert gate.ask(honest, Actor(VILLAGE, "village")).admitted
    forged = dataclasses.replace(honest, fields={**honest.fields, "address": "  "})
    verdict = gate.ask(forged, Actor(VILLAGE, "village"))
    assert (verdict.admitted, verdict.code) == (False, "address_required")
    assert "需现场踏勘，受理时必须登记地址" in verdict.reason


def test_the_hub_approves_only_after_a_report_or_on_an_override(
    district: World, capsys: pytest.CaptureFixture[str]
) -> None:
    number = _under_review(district)
    hub_dir = str(district.root / "hub")
    district.hub.close()
    assert sanji(["hub", "transition", hub_dir, number, "--to", "approved"]) == 2
    err = capsys.readouterr().err
    assert "需现场踏勘，尚无踏勘报告，不能准予许可" in err and "--override-reason" in err
    assert sanji(["hub", "transition", hub_dir, number, "--to", "approved", "--override-reason", REASON]) == 0
    assert f"未经现场踏勘准予许可，理由已记入办件记录：{REASON}" in capsys.readouterr().out
    district.hub = Hub.open(district.root / "hub", clock=district.clock)
    assert operations.show(district.hub, number)["status"] == "approved"
    [event] = _events(district.hub, number)
    assert event["action"] == "approve_without_inspection" and event["note"] == f"未经现场踏勘准予许可，理由：{REASON}"
    # The accepting station sees it in the history at its next sync.
    village = district.get(VILLAGE)
    district.pull(village)
    app_id = commands.find(village, number)
    assert any(h["entity"] == "event" for h in village.records.history(app_id))


def test_a_pass_report_with_a_no_is_flagged_and_the_report_lets_the_approval_through(
    district: World, capsys: pytest.CaptureFixture[str]
) -> None:
    number = _under_review(district)
    task = str(hub_inspection.assign(district.hub, number, DEVICE)["task"])
    device = district.get(DEVICE)
    district.pull(device)
    device.close()
    args = ["node", "report", str(district.root / DEVICE), task, "--result", "pass", "--finding", "与申请一致"]
    assert sanji([*args, "--check", "2=no"]) == 0
    assert "注意: 结论为通过，但有 1 项核查为否" in capsys.readouterr().out
    device = Station(district.root / DEVICE, clock=district.clock)
    district.stations.append(device)
    assert device.records.values("report", task)["check_flag"] == "结论为通过，但有 1 项核查为否"
    district.push(device)
    report = operations.show(district.hub, number)["inspections"][0]["report"]  # type: ignore[index]
    assert report["check_flag"] == "结论为通过，但有 1 项核查为否"
    # With the report in, the decision needs no override.
    assert operations.transition(district.hub, number, "approved") == {"number": number, "status": "approved"}
    assert _events(district.hub, number) == []


def test_a_deciding_township_is_held_to_the_same_rule(district: World, capsys: pytest.CaptureFixture[str]) -> None:
    township = district.get(TOWNSHIP)
    village = district.get(VILLAGE)
    number = str(district.accept(village, TOWNSHIP_SITE_ITEM)["number"])
    district.push(village)
    district.pull(township)
    commands.transition(township, number, "under_review")
    township.close()
    folder = str(district.root / TOWNSHIP)
    assert sanji(["node", "transition", folder, number, "--to", "approved"]) == 2
    assert "需现场踏勘，尚无踏勘报告" in capsys.readouterr().err
    assert sanji(["node", "transition", folder, number, "--to", "approved", "--override-reason", REASON]) == 0
    capsys.readouterr()
    township = Station(district.root / TOWNSHIP, clock=district.clock)
    district.stations.append(township)
    district.push(township)
    assert operations.show(district.hub, number)["status"] == "approved"
    assert [e["action"] for e in _events(district.hub, number)] == ["approve_without_inspection"]


def _township_reviewing(world: World) -> tuple[Station, str, str]:
    """A village's 临时救助申请 under review at its township, which decides it: (township, number, id)."""
    village, township = world.get(VILLAGE), world.get(TOWNSHIP)
    number = str(world.accept(village, TOWNSHIP_SITE_ITEM)["number"])
    world.push(village)
    world.pull(township)
    commands.transition(township, number, "under_review")
    world.push(township)
    return township, number, operations.find_application(world.hub, number)


def test_modified_software_cannot_approve_past_the_inspection(district: World) -> None:
    """Authentic is not authorised: a township with its real keys writing the approval itself, with no
    report and no override event, has it held at the hub with the code its own command gives."""
    township, number, app_id = _township_reviewing(district)
    record = township.records.load("application", app_id)
    with township.transaction():
        township.write_unchecked("application", app_id, {"status": "approved"}, {"status": record["status"][0]})
    district.push(township)
    assert operations.show(district.hub, number)["status"] == "under_review"
    held = district.hub.store.conn.execute(
        "SELECT code FROM quarantine WHERE origin=? AND state='open'", (TOWNSHIP,)
    ).fetchall()
    assert [c for (c,) in held] == ["inspection_required"]


def test_the_stations_own_write_asks_the_same_question(district: World) -> None:
    township, number, app_id = _township_reviewing(district)
    record = township.records.load("application", app_id)
    with pytest.raises(Refused) as refused, township.transaction():
        township.write("application", app_id, {"status": "approved"}, {"status": record["status"][0]})
    assert refused.value.code == "inspection_required"
    # The command's override writes the event first, so the same question admits it, here and at the hub.
    commands.transition(township, number, "approved", override_reason=REASON)
    district.push(township)
    assert operations.show(district.hub, number)["status"] == "approved"
