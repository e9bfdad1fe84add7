"""Recovery from a compromised online key, end to end (issue 21, row 6), with real `sanji` processes.

The hub rotates its online key, publishes a release, then rotates its root (the new root kept on a
"USB key"). One station stays offline across both and reconnects over HTTP; another only ever
travels by USB. Both follow both rotations with no re-enrolment, and a release signed by the removed
key is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hub.service import BUILTIN_CATALOGUE
from protocol.document import sign_document
from replica.keyfile import load_keys
from tests.e2e.conftest import DISTRICT, TOWNSHIP, Hub, init_online
from tests.e2e.processes import ok, run_sanji

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)


def test_stations_follow_a_key_and_a_root_rotation_and_refuse_the_removed_key(hub: Hub, tmp_path: Path) -> None:
    hub.enroll(TOWNSHIP, tier="township")
    with hub.serving():
        online = init_online(hub, tmp_path / "online", f"{TOWNSHIP}-51")
        assert ok("node", "sync", online.dir)["catalogue_version"] == 1
    first = ok("node", "status", online.dir)
    usb_file = tmp_path / "carry" / "usb.sje"
    usb_file.parent.mkdir()
    token = hub.enroll(f"{TOWNSHIP}-52", tier="village", parent=TOWNSHIP, out=usb_file)
    ok("node", "init", tmp_path / "usb", "--enrollment", usb_file, "--token", token)
    stick = tmp_path / "stick-up"
    ok("node", "export", tmp_path / "usb", "--out", stick)
    ok("hub", "import", hub.dir, stick)  # the claim pins the USB station's keys

    # The online key is thought stolen: keep a copy, as a thief would have, then rotate it away.
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    shutil.copy(hub.dir / "keys.bin", stolen / "keys.bin")
    rotated = ok("hub", "rotate-key", hub.dir)
    assert rotated["version"] == 2 and len(rotated["key_id"]) == 16
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(BUILTIN_CATALOGUE.read_text("utf-8"), encoding="utf-8")
    assert ok("hub", "publish", hub.dir, catalogue)["catalogue_version"] == 2
    # Then the root, the new one made on the security office's USB key.
    rooted = ok("hub", "rotate-root", hub.dir, "--new-root", tmp_path / "security-usb" / "root.key")
    assert rooted["version"] == 3 and rooted["fingerprint"] != first["hub_fingerprint"]

    with hub.serving():  # restarted after the rotations, as the README says
        synced = ok("node", "sync", online.dir)
    status = ok("node", "status", online.dir)
    assert synced["catalogue_version"] == 2 and status["catalogue_version"] == 2
    assert status["hub_fingerprint"] == rooted["fingerprint"] and status["hub_keys_version"] == 3

    down = tmp_path / "stick-down"
    files = ok("hub", "export", hub.dir, "--station", f"{TOWNSHIP}-52", "--out", down)["files"]
    assert Path(files[0]).suffix == ".sjk"  # the key history travels first
    assert ok("node", "import", tmp_path / "usb", down)["rejected"] == []
    usb_status = ok("node", "status", tmp_path / "usb")
    assert (usb_status["hub_fingerprint"], usb_status["catalogue_version"]) == (rooted["fingerprint"], 2)

    # Release 3, signed by the stolen (removed) key, is refused by both.
    thief = load_keys(stolen)
    body = {
        "version": 3,
        "issued_at": "2026-09-01T00:00:00+08:00",
        "expires_at": "2027-03-01T00:00:00+08:00",
        "catalogue": json.loads(BUILTIN_CATALOGUE.read_text("utf-8")),
    }
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "release3.sjd").write_bytes(
        sign_document(
            "catalogue", body, signer=DISTRICT, recipient="*", signing_key=thief.sign, extra_header={"version": 3}
        )
    )
    for station in (online.dir, tmp_path / "usb"):
        res = run_sanji("node", "import", station, forged)
        assert res.code == 2 and res.data["rejected"], res
        assert ok("node", "status", station)["catalogue_version"] == 2
