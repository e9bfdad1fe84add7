"""An inspector names the task by the 办件编号 on the paper, or a unique beginning of it or of the
task id, not only by the 36-character task id (issue 14 item 9)."""

from __future__ import annotations

import pytest

from hub import operations
from node import inspection
from replica.errors import Refused
from tests.conftest import World
from tests.inspection.conftest import ITEM, VILLAGE, Scene


def test_the_application_number_names_the_task(scene: Scene) -> None:
    task = scene.assigned()
    out = inspection.report(scene.field, scene.number, result="pass", findings=["属实"])
    assert out["task"] == task


def test_a_unique_beginning_of_the_task_id_names_it(scene: Scene) -> None:
    task = scene.assigned()
    out = inspection.report(scene.field, task[:13], result="pass", findings=["属实"])
    assert out["task"] == task


def test_a_beginning_two_tasks_share_is_refused_asking_for_more(scene: Scene, world: World) -> None:
    scene.assigned()
    other = world.accept(scene.village, ITEM, address="兴桥镇塅口村5组", phone="13900000002")
    world.push(scene.village)
    operations.transition(world.hub, str(other["number"]), "under_review")
    scene.assign(str(other["number"]))
    world.pull(scene.field)
    shared = f"{VILLAGE}-"  # both numbers begin with the village's code
    seq = scene.field.meta.int("seq")
    with pytest.raises(Refused, match="2 个任务，请多输入几位") as err:
        inspection.report(scene.field, shared, result="pass", findings=["属实"])
    assert err.value.code == "ambiguous_task"
    assert scene.field.meta.int("seq") == seq


def test_a_device_with_no_task_yet_is_told_to_sync(scene: Scene) -> None:
    with pytest.raises(Refused, match=r"还没有任何任务.*sanji node sync"):
        inspection.report(scene.field, scene.number, result="pass", findings=["属实"])


def test_a_device_with_tasks_is_not_told_to_sync_for_a_typo(scene: Scene) -> None:
    scene.assigned()
    with pytest.raises(Refused) as err:
        inspection.report(scene.field, "no-such", result="pass", findings=["属实"])
    assert "sanji node tasks" in str(err.value) and "sync" not in str(err.value)
