"""`node inspect`: a township assigns the inspection of an item it decides, offline, and the report
comes back to it and to the village through the hub."""

from __future__ import annotations

import pytest

from hub import operations
from node import commands, inspection
from node.assignment import assign
from replica.errors import Refused
from sync.inspection import TASK_DONE
from tests.conftest import World
from tests.inspection.conftest import FIELD, ITEM, TOWNSHIP, VILLAGE

TOWNSHIP_ITEM = "360802-0006"  # 临时救助申请: decided by the township, on-site inspection required
DAY_MS = 86_400_000


@pytest.fixture
def district(world: World):  # type: ignore[no-untyped-def]
    township = world.station(TOWNSHIP, "township")
    village = world.station(VILLAGE, "village", TOWNSHIP)
    field = world.station(FIELD, "field")
    app = world.accept(village, TOWNSHIP_ITEM, address="兴桥镇塅口村5组", phone="13900000005")
    world.push(village)
    world.pull(township)
    number = str(app["number"])
    commands.transition(township, number, "under_review")
    return township, village, field, number


def _state(st) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    return (
        st.conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0],
        st.conn.execute("SELECT COUNT(*) FROM records WHERE entity='task'").fetchone()[0],
    )


def test_township_assigns_offline_and_the_report_comes_back(world: World, district) -> None:  # type: ignore[no-untyped-def]
    township, village, field, number = district
    out = assign(township, number, FIELD)
    assert out["inspector"] == FIELD and out["status"] == "inspecting"
    row = next(a for a in commands.applications(township) if a["number"] == number)
    assert row["status"] == "inspecting" and row["paused"] is True

    acks = world.push(township)
    assert sum(a.applied for a in acks) == 3 and sum(a.quarantined for a in acks) == 0
    shown = operations.show(world.hub, number)
    assert shown["status"] == "inspecting" and [i["inspector"] for i in shown["inspections"]] == [FIELD]  # type: ignore[index]

    world.pull(field)
    tasks = inspection.tasks(field)
    assert [t["task"] for t in tasks] == [out["task"]] and tasks[0]["address"] == "兴桥镇塅口村5组"
    assert tasks[0]["phone"] != "13900000005"  # masked unless revealed
    world.clock.advance(2 * DAY_MS)
    inspection.report(field, str(out["task"]), result="pass", findings=["情况属实"], gps="29.1,115.9,8")
    world.push(field)

    world.pull(township)
    assert township.records.values("report", str(out["task"]))["result"] == "pass"
    assert township.records.values("task", str(out["task"]))["status"] == TASK_DONE
    due_before = str(township.records.values("application", commands.find(township, number))["due_date"])
    commands.transition(township, number, "approved")
    after = township.records.values("application", commands.find(township, number))
    assert after["status"] == "approved" and after["paused"] is False
    assert str(after["due_date"]) > due_before  # the days spent on site are taken out of the time limit
    world.push(township)
    world.pull(village)
    seen = village.records.values("application", commands.find(village, number))
    assert seen["status"] == "approved" and seen["due_date"] == after["due_date"]
    assert village.records.values("report", str(out["task"]))["result"] == "pass"


def test_who_may_assign_and_to_whom(world: World, district) -> None:  # type: ignore[no-untyped-def]
    township, village, _, number = district
    with township.transaction():
        township.meta.set("field_devices", [])  # as on a centre whose feed has not named any device yet
    before = _state(township)
    with pytest.raises(Refused, match="请先联网同步（sanji node sync）"):
        assign(township, number, FIELD)
    world.pull(township)
    assert township.meta.get("field_devices") == [FIELD]
    with pytest.raises(Refused, match="不是本区的踏勘设备"):
        assign(township, number, VILLAGE)
    with pytest.raises(Refused, match="本站不决定事项"):
        assign(village, number, FIELD)
    with pytest.raises(Refused, match="已经过了"):
        assign(township, number, FIELD, "2020-01-01")
    assert _state(township) == before  # every refusal wrote nothing

    own = world.accept(township, ITEM)  # accepted at the township's own window; the district decides it
    with pytest.raises(Refused, match="本站不决定事项"):
        assign(township, str(own["number"]), FIELD)
    neighbour = world.accept(village, ITEM)
    world.push(village)
    world.pull(township)
    with pytest.raises(Refused, match="本站没有编号为"):
        assign(township, str(neighbour["number"]), FIELD)  # not in the township's scope at all


def test_hub_holds_a_task_for_a_device_revoked_meanwhile(world: World, district) -> None:  # type: ignore[no-untyped-def]
    township, _, _, number = district
    assign(township, number, FIELD)
    with world.hub.store.transaction():
        world.hub.store.revoke(FIELD)
    acks = world.push(township)
    assert sum(a.quarantined for a in acks) == 1  # the task is held with its reason, not lost
    reasons = [str(r[0]) for r in world.hub.store.conn.execute("SELECT reason FROM quarantine")]
    assert any("revoked" in r and FIELD in r for r in reasons)
    assert operations.show(world.hub, number)["inspections"] == []


def test_a_withdrawal_at_the_window_ends_the_pause_everywhere(world: World, district) -> None:  # type: ignore[no-untyped-def]
    township, village, _, number = district
    assign(township, number, FIELD)
    world.push(township)
    world.pull(village)
    assert next(a for a in commands.applications(village) if a["number"] == number)["paused"] is True
    commands.transition(village, number, "withdrawn")  # the citizen withdraws while the site is inspected
    world.push(village)
    assert next(a for a in commands.applications(village) if a["number"] == number)["paused"] is False
    hub_row = next(a for a in operations.applications(world.hub) if a["number"] == number)
    assert hub_row["status"] == "withdrawn" and hub_row["paused"] is False
    assert "clock" not in operations.show(world.hub, number)
