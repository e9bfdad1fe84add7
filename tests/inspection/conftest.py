"""Fixtures for the inspection tests: a district with a village, a township and a field device.

Built in-process on the shared ``World`` (tests/conftest.py): real hub and station folders, a fake
clock both sides share, and the same ingest and feed code the HTTP routes call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub import operations
from hub.inspection import assign
from node.station import Station
from tests.conftest import World

ITEM = "360802-0004"  # 最低生活保障申请: on-site inspection required, decided by the district
PLAIN_ITEM = "360802-0001"  # 城乡居民基本养老保险参保登记: no inspection
FIELD = "360802-F01"
VILLAGE = "360802-T01-05"
TOWNSHIP = "360802-T01"


@dataclass
class Scene:
    world: World
    village: Station
    field: Station
    number: str
    app_id: str

    def assign(self, number: str | None = None) -> dict[str, object]:
        return assign(self.world.hub, number or self.number, FIELD)

    def assigned(self) -> str:
        """Assign, and let the field device receive its task; returns the task id."""
        task = str(self.assign()["task"])
        self.world.pull(self.field)
        return task


@pytest.fixture
def scene(world: World) -> Scene:
    world.station(TOWNSHIP, "township")
    village = world.station(VILLAGE, "village", TOWNSHIP)
    field = world.station(FIELD, "field")
    app = world.accept(village, ITEM, address="兴桥镇塅口村3组", phone="13900000001")
    world.push(village)
    operations.transition(world.hub, str(app["number"]), "under_review")
    return Scene(world, village, field, str(app["number"]), str(app["id"]))


def photo(folder: Path, name: str, size: int) -> Path:
    """A made-up photo: a PNG signature and random bytes (nothing decodes it; only its hash matters)."""
    path = folder / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(size - 8))
    return path
