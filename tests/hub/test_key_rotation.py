"""Two levels of hub keys (issue 21, row 6), in process: the root lists the online keys; rotating either
one reaches stations through the key history, in order, however late they come back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hub import keyring
from hub.service import BUILTIN_CATALOGUE
from node import hubkeys, usb_files
from protocol.document import sign_document
from protocol.hubkeys import fingerprint
from replica.errors import Refused
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

DAY = 86_400_000


def catalogue() -> dict[str, object]:
    return dict(json.loads(BUILTIN_CATALOGUE.read_text("utf-8")))


def follow(world: World, code: str) -> dict[str, object]:
    """What a sync round does first (GET /v1/keys), minus HTTP."""
    return hubkeys.adopt(world.get(code), keyring.bundle(world.hub))


@pytest.fixture
def world2(world: World) -> World:
    world.station("T1", "township")
    world.station("T1-V1", "village", "T1")
    return world


def test_a_station_offline_across_both_rotations_follows_them_months_later(world2: World, tmp_path: Path) -> None:
    world, hub = world2, world2.hub
    v1 = world.get("T1-V1")
    first_root = v1.meta.bytes("hub_root_pub")
    old = hub.keys
    out = keyring.rotate_key(hub)
    assert out == {"key_id": hub.keys.sign_key_id, "version": 2} and hub.keys.sign_key_id != old.sign_key_id
    assert hub.publish(catalogue()) == 2
    world.clock.advance(60 * DAY)
    usb = tmp_path / "security-office" / "root.key"
    rooted = keyring.rotate_root(hub, usb)
    assert rooted["version"] == 3 and usb.is_file()
    assert keyring.default_root_path(hub.folder).read_bytes() == usb.read_bytes()  # the root lived on the hub
    world.clock.advance(90 * DAY)  # the village comes back five months after it last synced

    followed = follow(world, "T1-V1")
    assert followed["version"] == 3 and followed["key_id"] == hub.keys.sign_key_id
    assert v1.meta.bytes("hub_root_pub") != first_root
    assert followed["fingerprint"] == rooted["fingerprint"] == fingerprint(v1.meta.bytes("hub_root_pub"))
    world.pull(v1)
    assert v1.catalogue().version == 2  # release 2 came signed by the new key, and it is the one kept
    world.accept(v1, "360802-0004", deferred=["家庭收入情况声明"])
    assert [a.result.value for a in world.push(v1)] == ["applied"]

    # Release 3 signed by the removed key (say, by whoever stole it) is refused by hand and online.
    forged = sign_document(
        "catalogue",
        {
            "version": 3,
            "issued_at": "2026-09-01T00:00:00+08:00",
            "expires_at": "2027-03-01T00:00:00+08:00",
            "catalogue": catalogue(),
        },
        signer=hub.hub_id,
        recipient="*",
        signing_key=old.sign,
        extra_header={"version": 3},
    )
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "catalogue_v3.sjd").write_bytes(forged)
    result = usb_files.import_files(v1, [stick])
    assert result["accepted"] == 0 and "签名密钥不受信任" in str(result["rejected"])
    assert v1.catalogue().version == 2


def test_the_hub_keeps_reading_its_own_releases_after_a_rotation(world2: World) -> None:
    hub = world2.hub
    hub.publish(catalogue())
    keyring.rotate_key(hub)
    assert hub.catalogue()[0] == 2
    for version, frame in hub.store.release_frames():
        assert version in (1, 2) and hub.keys.sign_key_id.encode() in frame  # every release signed again


def test_a_key_list_past_its_expiry_is_refused_until_the_hub_renews_it(world2: World, tmp_path: Path) -> None:
    world, hub = world2, world2.hub
    keyring.rotate_key(hub, valid_days=30)
    follow(world, "T1-V1")
    v1 = world.get("T1-V1")
    world.clock.advance(31 * DAY)
    with pytest.raises(Refused, match="密钥清单已过期"):
        hubkeys.check(v1)
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "feed.sjd").write_bytes(b"not even read")
    result = usb_files.import_files(v1, [stick])
    assert result["accepted"] == 0 and "过期" in str(result["rejected"])
    # An expired list is never adopted either: the hub must issue a fresh one.
    keyring.rotate_key(hub)
    assert follow(world, "T1-V1")["version"] == 3
    hubkeys.check(v1)
    world.pull(v1)


def test_the_root_can_live_offline(world2: World, tmp_path: Path) -> None:
    hub = world2.hub
    usb = tmp_path / "usb" / "root"
    usb.parent.mkdir()
    shutil.move(keyring.default_root_path(hub.folder), usb)  # to the security office
    with pytest.raises(Refused, match="找不到根密钥"):
        keyring.rotate_key(hub)
    assert keyring.rotate_key(hub, root_path=usb)["version"] == 2
    keyring.rotate_root(hub, tmp_path / "usb" / "root2", root_path=usb)
    assert not keyring.default_root_path(hub.folder).exists()  # an offline root stays offline
    with pytest.raises(Refused, match="不是本枢纽当前的根密钥"):
        keyring.rotate_key(hub, root_path=usb)
    assert keyring.rotate_key(hub, root_path=tmp_path / "usb" / "root2")["version"] == 4
    assert follow(world2, "T1-V1")["version"] == 4


def test_a_hub_and_stations_from_before_root_keys_migrate_without_re_enrolment(world2: World) -> None:
    world, hub = world2, world2.hub
    v1 = world.get("T1-V1")
    legacy_key = hub.keys.sign_pub
    # A hub folder and a station as the old code left them: no root, only the online key pinned.
    shutil.rmtree(hub.folder / keyring.KEYS_DIR)
    with v1.transaction():
        for name, empty in (("hub_root_pub", b""), ("hub_keys_version", 0), ("hub_keys_expires", 0)):
            v1.meta.set(name, empty)
    hub.close()
    world.hub = type(hub).open(hub.folder, clock=world.clock)  # first use: the root is made here
    assert keyring.default_root_path(world.hub.folder).is_file()
    assert hubkeys.pinned_fingerprint(v1) == ""
    hubkeys.check(v1)  # nothing to expire yet: the pinned online key still stands
    followed = follow(world, "T1-V1")
    assert followed["version"] == 1 and v1.meta.bytes("hub_sign_pub") == legacy_key
    assert followed["fingerprint"] == fingerprint(keyring.load_chain(world.hub.folder).root_pub)  # type: ignore[union-attr]
    keyring.rotate_key(world.hub)
    assert follow(world, "T1-V1")["version"] == 2
    world.pull(v1)


def test_a_serving_hub_takes_the_new_key_when_stations_ask_for_the_key_history(world2: World) -> None:
    """`rotate-key` runs in another process while `hub serve` runs: the serving hub switches at the
    next /v1/keys (every station asks for it first in each round), so nobody waits for a restart."""
    world, serving = world2, world2.hub
    cli = type(serving).open(serving.folder, clock=world.clock)
    try:
        keyring.rotate_key(cli)
        assert serving.keys.sign_key_id != cli.keys.sign_key_id
        bundle = keyring.bundle(serving)  # what GET /v1/keys runs
        assert serving.keys.sign_key_id == cli.keys.sign_key_id
    finally:
        cli.close()
    v1 = world.get("T1-V1")
    hubkeys.adopt(v1, bundle)
    world.pull(v1)
    assert [a.result.value for a in world.push(v1)] == []  # nothing to push, but the acks verify


def test_hub_status_shows_the_fingerprint_and_asks_for_renewal_before_the_list_expires(world2: World) -> None:
    from hub.operations import status

    hub = world2.hub
    keys = status(hub)["hub_keys"]
    assert isinstance(keys, dict) and keys["version"] == 1 and keys["warning"] == ""
    assert keys["fingerprint"] == fingerprint(keyring.load_chain(hub.folder).root_pub)  # type: ignore[union-attr]
    world2.clock.advance((keyring.KEY_LIST_DAYS - keyring.RENEW_WARNING_DAYS + 1) * DAY)
    assert "rotate-key" in str(status(hub)["hub_keys"]["warning"])  # type: ignore[index]
    keyring.rotate_key(hub)
    assert status(hub)["hub_keys"]["warning"] == ""  # type: ignore[index]


def test_a_database_restored_from_before_a_rotation_has_its_releases_signed_again(world2: World) -> None:
    """A backup taken before `rotate-key` holds releases signed by the key since removed; the hub
    recognises them through its own key history and signs them again when it opens."""
    hub = world2.hub
    before = hub.store.release_frames()
    keyring.rotate_key(hub)
    with hub.store.transaction():  # what `hub restore` of the earlier backup puts back
        for version, frame in before:
            hub.store.replace_release_frame(version, frame)
    hub.close()
    world2.hub = type(hub).open(hub.folder, clock=world2.clock)
    assert world2.hub.catalogue()[0] == 1
    assert all(world2.hub.keys.sign_key_id.encode() in f for _, f in world2.hub.store.release_frames())
