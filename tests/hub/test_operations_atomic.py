"""A hub-side move and what must be recorded with it (the dashboard's audit row) commit together."""

from __future__ import annotations

import pytest

from hub import operations
from hub.inspection import assign
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


class Boom(RuntimeError):
    pass


def _explode(*_args: object) -> None:
    raise Boom("the audit row could not be written")


def test_a_move_whose_record_fails_is_not_made(world: World) -> None:
    world.station("360802-T01", "township")
    village = world.station("360802-T01-05", "village", "360802-T01")
    number = str(world.accept(village, "360802-0004")["number"])  # 最低生活保障申请: decided by the district
    world.push(village)
    with pytest.raises(Boom):
        operations.transition(world.hub, number, "under_review", also=_explode)
    assert operations.show(world.hub, number)["status"] == "accepted"
    operations.transition(world.hub, number, "under_review")

    world.station("360802-F01", "field")
    with pytest.raises(Boom):
        assign(world.hub, number, "360802-F01", also=_explode)
    shown = operations.show(world.hub, number)
    assert shown["status"] == "under_review" and shown["inspections"] == []
