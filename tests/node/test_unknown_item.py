"""A mistyped item code at the counter is refused with the items it nearly is (issue 14 item 6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from node import commands
from replica.errors import Refused
from tests.conftest import World

ITEM = "360802-0010"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))


def test_a_dropped_digit_is_refused_naming_the_item_meant(world: World) -> None:
    v1 = world.get("T1-V1")
    app = replace(world.application(ITEM, st=v1), item="36802-0010")
    with pytest.raises(Refused) as err:
        commands.accept(v1, app)
    assert err.value.code == "unknown_item"
    assert "是否要找：360802-0010" in str(err.value)
    assert v1.pending_changes() == 0


def test_nothing_near_points_to_the_catalogue_command(world: World) -> None:
    v1 = world.get("T1-V1")
    app = replace(world.application(ITEM, st=v1), item="no-such-thing")
    with pytest.raises(Refused, match="sanji node catalogue"):
        commands.accept(v1, app)
