"""`hub inspect`: who may be assigned, what the task carries, and the paused due-date clock."""

from __future__ import annotations

import re
from datetime import date

import pytest

from hub import operations
from hub.inspection import assign
from replica.errors import Refused
from sync.inspection import PAUSED_LABEL
from tests.conftest import World
from tests.inspection.conftest import FIELD, ITEM, PLAIN_ITEM, VILLAGE, Scene

DAY_MS = 86_400_000
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_assignment_is_refused_with_a_reason(scene: Scene, world: World) -> None:
    hub = world.hub
    with pytest.raises(Refused, match="区局没有登记踏勘设备 360802-F99"):
        assign(hub, scene.number, "360802-F99")
    with pytest.raises(Refused, match="不是踏勘设备"):
        assign(hub, scene.number, VILLAGE)
    plain = world.accept(scene.village, PLAIN_ITEM)
    waiting = world.accept(scene.village, ITEM)
    world.push(scene.village)
    with pytest.raises(Refused, match="不需要现场踏勘"):
        assign(hub, str(plain["number"]), FIELD)
    with pytest.raises(Refused, match="请先转入审查"):
        assign(hub, str(waiting["number"]), FIELD)
    with pytest.raises(Refused, match="已经过了"):
        assign(hub, scene.number, FIELD, "2020-01-01")
    with pytest.raises(Refused, match="请写成 YYYY-MM-DD"):
        assign(hub, scene.number, FIELD, "next week")
    with pytest.raises(Refused, match="区局没有编号为 360802-NOPE 的办件"):
        assign(hub, "360802-NOPE", FIELD)
    with world.hub.store.transaction():
        world.hub.store.revoke(FIELD)
    with pytest.raises(Refused, match="已被吊销"):
        assign(hub, scene.number, FIELD)
    assert operations.show(hub, scene.number)["inspections"] == []  # nothing was written


def test_assignment_writes_a_task_moves_to_inspecting_and_pauses_the_clock(scene: Scene, world: World) -> None:
    out = scene.assign()
    assert set(out) >= {"task", "number", "inspector"}
    assert UUID7.fullmatch(str(out["task"])) and out["number"] == scene.number and out["inspector"] == FIELD
    assert out["due"] == "2026-03-09"  # five working days after Monday 2 March 2026
    shown = operations.show(world.hub, scene.number)
    assert shown["status"] == "inspecting" and shown["clock"] == PAUSED_LABEL
    assert [i["task"] for i in shown["inspections"]] == [out["task"]]  # type: ignore[index]
    assert shown["inspections"][0]["status"] == "assigned"  # type: ignore[index]
    row = next(a for a in operations.applications(world.hub) if a["number"] == scene.number)
    assert row["paused"] is True and row["status"] == "inspecting"
    with pytest.raises(Refused, match="还没有报告"):
        scene.assign()


def test_the_task_carries_only_what_the_inspector_needs(scene: Scene, world: World) -> None:
    task_id = str(scene.assign(None)["task"])
    task = world.hub.records.values("task", task_id)
    assert set(task) == {"application", "number", "inspector", "due", "status", "item", "address", "phone", "checklist"}
    assert task["address"] == "兴桥镇塅口村3组" and task["phone"] == "13900000001" and task["number"] == scene.number
    world.pull(scene.field)
    held = {(str(e), str(i)) for e, i in scene.field.conn.execute("SELECT entity, id FROM records")}
    assert held == {("task", task_id)}  # not the application, not the applicant's name or ID number
    assert scene.field.conn.execute("SELECT COUNT(*) FROM applications").fetchone()[0] == 0


def test_the_field_device_lists_its_tasks(scene: Scene, world: World) -> None:
    from node.inspection import tasks

    assert tasks(scene.field) == []
    task_id = scene.assigned()
    listed = tasks(scene.field)
    assert [(t["task"], t["number"], t["item"], t["address"], t["due"], t["status"]) for t in listed] == [
        (task_id, scene.number, ITEM, "兴桥镇塅口村3组", "2026-03-09", "assigned")
    ]
    assert listed[0]["phone"] == "139****0001"
    assert tasks(scene.field, reveal=True)[0]["phone"] == "13900000001"
    assert tasks(scene.village) == []  # the village holds the task record but is not its inspector


def test_leaving_inspection_unpauses_and_moves_the_due_date_out(scene: Scene, world: World) -> None:
    before = date.fromisoformat(str(operations.show(world.hub, scene.number)["fields"]["due_date"]))  # type: ignore[index]
    scene.assign()
    world.clock.advance(4 * DAY_MS)  # Monday to Friday, no report came: four working days paused
    # No report came: the district approves on an explicit override, written with the decision.
    operations.transition(
        world.hub, scene.number, "approved", "符合条件", override_reason="踏勘设备故障，已电话核实现场"
    )
    shown = operations.show(world.hub, scene.number)
    fields = shown["fields"]
    assert shown["status"] == "approved" and "clock" not in shown
    assert fields["paused"] is False  # type: ignore[index]
    cal = world.hub.catalogue()[1].calendar
    assert fields["due_date"] == cal.add_working_days(before, 4).isoformat()  # type: ignore[index]
    # The village learns it at its next sync.
    world.pull(scene.village)
    row = scene.village.conn.execute(
        "SELECT status, paused, due_date FROM applications WHERE number=?", (scene.number,)
    ).fetchone()
    assert tuple(row) == ("approved", 0, fields["due_date"])  # type: ignore[index]


def test_withdrawal_during_inspection_lifts_the_pause(scene: Scene, world: World) -> None:
    scene.assign()
    operations.transition(world.hub, scene.number, "withdrawn", "申请人撤回")
    shown = operations.show(world.hub, scene.number)
    assert shown["status"] == "withdrawn" and shown["fields"]["paused"] is False  # type: ignore[index]
