"""A key history older than the list a station holds: a township relay's kept copy from before the hub
rotated (the simulator's seed 232), or an old stick's key file. Its release was signed by a key the
station has followed past; it is not news, and must be taken as such, not refused as "no trusted key"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub import keyring
from hub.service import BUILTIN_CATALOGUE
from node import hubkeys
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")


@pytest.fixture
def village(world: World) -> World:
    world.station("T1", "township")
    world.station("T1-V1", "village", "T1")
    world.hub.publish(dict(json.loads(BUILTIN_CATALOGUE.read_text("utf-8"))))
    return world


def test_an_older_key_history_changes_nothing_and_is_not_refused(village: World) -> None:
    world, hub = village, village.hub
    v1 = world.get("T1-V1")
    kept = keyring.bundle(hub)  # what the relay kept (or the stick carried) at list 1
    keyring.rotate_key(hub)
    assert hubkeys.adopt(v1, keyring.bundle(hub))["version"] == 2  # followed directly
    world.pull(v1)
    frames_before = v1.conn.execute("SELECT version, frame FROM catalogues ORDER BY version").fetchall()
    pinned = v1.meta.bytes("hub_sign_pub")

    followed = hubkeys.adopt(v1, kept)  # raised "no trusted key" for list 1's release before

    assert followed["version"] == 2 and followed["followed"] is False
    assert v1.meta.bytes("hub_sign_pub") == pinned
    assert v1.conn.execute("SELECT version, frame FROM catalogues ORDER BY version").fetchall() == frames_before
    world.pull(v1)  # and what the hub signs now still verifies
    assert v1.catalogue().version == 2


def test_an_old_key_file_on_a_stick_is_taken_as_nothing_new(village: World, tmp_path: Path) -> None:
    world, hub = village, village.hub
    v1 = world.get("T1-V1")
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "360802_keys_v0001.sjk").write_bytes(keyring.key_file(keyring.bundle(hub)))
    keyring.rotate_key(hub)
    hubkeys.adopt(v1, keyring.bundle(hub))

    accepted, rejected, rest = hubkeys.import_key_files(v1, sorted(stick.iterdir()))

    assert (accepted, rejected, rest) == (1, [], [])
    assert v1.meta.int("hub_keys_version") == 2


def test_a_history_as_new_as_the_station_still_brings_its_release(village: World) -> None:
    """The line drawn is "older", not "not newer": a history at the station's own list may carry a
    release it lacks, signed by the key it holds."""
    world, hub = village, village.hub
    v1 = world.get("T1-V1")
    keyring.rotate_key(hub)
    hubkeys.adopt(v1, keyring.bundle(hub, with_release=False))
    assert v1.conn.execute("SELECT COUNT(*) FROM catalogues WHERE version=2").fetchone()[0] == 0
    hubkeys.adopt(v1, keyring.bundle(hub))
    assert v1.catalogue().version == 2
