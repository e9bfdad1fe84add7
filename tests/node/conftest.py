"""The station the CLI tests in this folder drive: a village under its township, on a world whose clock
is the real one (``sanji`` stamps its changes with the wall clock, and the hub must agree). A module
needing another set-up defines its own ``village``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from node.station import Station
from tests.conftest import World

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"


@pytest.fixture
def village(world: World) -> Iterator[Station]:
    world.clock.ms = int(time.time() * 1000)
    world.station(TOWNSHIP, "township")
    yield world.station(VILLAGE, "village", TOWNSHIP)
