"""A release no station can receive is refused at publish, and a feed page never exceeds the shared cap.

Issue 21: an 8.5 MB release was published (exit 0) and then no feed page opened at any station; a 70 MB
catalogue failed with exit 1. The caps come from protocol/limits.py, the same table the stations use.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hub import cli as hub_cli
from hub import feed as hub_feed
from hub import operations
from hub.feed import feed_page
from hub.service import BUILTIN_CATALOGUE
from node import usb_files
from node.station import Station
from protocol import frame as frame_mod
from protocol import limits
from protocol.codec import pack
from protocol.document import open_document
from protocol.frame import peek_header
from replica.errors import Refused
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

ROOT = Path(__file__).resolve().parents[2]
DISTRICT_ITEM = "360802-0004"


def sample() -> dict[str, object]:
    doc = json.loads(BUILTIN_CATALOGUE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def padded(megabytes: float, *, seed: int = 21) -> dict[str, object]:
    """The sample catalogue plus items whose material names are incompressible text (base64 of seeded
    random bytes), about ``megabytes`` of them: big releases the way a real one would be big."""
    rng = random.Random(seed)
    doc = sample()
    items = list(doc["items"])  # type: ignore[call-overload]
    template = dict(items[0])
    per_item = 40 * 1024
    for i in range(int(megabytes * 1024 * 1024) // per_item):
        names = [base64.b64encode(rng.randbytes(768)).decode() for _ in range(40)]
        items.append(
            {
                **template,
                "code": f"360802-{9000 + i:04d}",
                "materials": [{"name": n, "required": True, "deferrable": False} for n in names],
            }
        )
    doc["items"] = items
    return doc


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))


def test_a_release_whose_signed_frame_is_over_the_release_cap_is_refused_with_the_figures(world: World) -> None:
    with pytest.raises(Refused) as refused:
        world.hub.publish(padded(10))
    message = str(refused.value)
    assert refused.value.code == "too_large"
    assert "签名后的目录为" in message and limits.mib(limits.RELEASE_FRAME_MAX_BYTES) in message, message
    assert world.hub.store.latest_release()[0] == 1, "nothing is stored"  # type: ignore[index]


def test_a_release_over_the_payload_cap_is_refused_not_an_unexpected_error(world: World) -> None:
    with pytest.raises(Refused) as refused:
        world.hub.publish(padded(20))
    assert limits.mib(limits.PAYLOAD_MAX_BYTES) in str(refused.value) and "编码后" in str(refused.value)


def test_a_release_a_stations_decoder_would_refuse_is_refused_at_publish(world: World) -> None:
    doc = sample()
    items = list(doc["items"])  # type: ignore[call-overload]
    items[0] = {**items[0], "name": "长" * (limits.DEFAULT_LIMITS.max_str // 3 + 1)}  # over max_str in UTF-8
    doc["items"] = items
    with pytest.raises(Refused, match="站点的解码器会拒收"):
        world.hub.publish(doc)


def test_a_release_near_the_cap_is_published_and_reaches_a_station(world: World) -> None:
    v1 = world.get("T1-V1")
    assert world.hub.publish(padded(4)) == 2
    release = world.hub.store.latest_release()
    assert release is not None and 2 * limits.MIB < len(release[1]) <= limits.RELEASE_FRAME_MAX_BYTES
    while world.pull(v1).more:
        pass
    assert v1.catalogue().version == 2


def test_hub_publish_refuses_a_70_mb_catalogue_with_exit_2_and_the_limit(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sanji = Path(sys.executable).parent / "sanji"
    hub_dir = tmp_path / "hub"
    init = subprocess.run(
        [sanji, "hub", "init", hub_dir, "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert init.returncode == 0, init.stderr
    big = tmp_path / "catalogue-70mb.json"
    doc = sample()
    doc["note"] = "说明" * (70 * 1000 * 1000 // 6)  # a real JSON document of about 70 MB
    big.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert big.stat().st_size > 69 * 1000 * 1000
    res = subprocess.run([sanji, "hub", "publish", hub_dir, big], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert limits.mib(limits.CATALOGUE_SOURCE_MAX_BYTES) in res.stderr and str(big.stat().st_size) in res.stderr


def _wires(page: bytes, st: Station) -> list[object]:
    doc = open_document(page, kind="feed", recipient=st.code, verify_key=st.hub_key, unseal_key=lambda k: st.keys.seal)
    assert isinstance(doc.body, dict)
    return list(doc.body["changes"])


def test_a_feed_page_shrinks_to_fit_the_cap_and_loses_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = world.get("T1-V1")
    numbers = [str(world.accept(v1, DISTRICT_ITEM)["number"]) for _ in range(6)]
    world.push(v1)
    for n in numbers:
        operations.transition(world.hub, n, "under_review", "审查意见" * 450)  # changes of a few KB each
    cursor = 0
    whole = _wires(feed_page(world.hub, v1.code, after=cursor, catalogue_version=1), v1)
    assert len(whole) >= 6
    # A cap about a third of the changes fit under (plus the page's other fields).
    monkeypatch.setattr(frame_mod, "PAYLOAD_MAX_BYTES", len(pack(whole)) // 3 + 1024)
    seen: list[object] = []
    pages = 0
    while True:
        page = feed_page(world.hub, v1.code, after=cursor, catalogue_version=1)
        pages += 1
        header = peek_header(page)
        seen += _wires(page, v1)
        if header["more"] is not True:
            break
        cursor = int(str(header["next"]))
    assert pages > 3 and seen == whole


def test_a_release_rides_alone_when_changes_do_not_fit_beside_it(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    v1 = world.get("T1-V1")
    numbers = [str(world.accept(v1, DISTRICT_ITEM)["number"]) for _ in range(3)]
    world.push(v1)
    for n in numbers:
        operations.transition(world.hub, n, "under_review", "审查意见" * 450)
    assert world.hub.publish(sample()) == 2
    release = world.hub.store.latest_release()
    assert release is not None
    monkeypatch.setattr(frame_mod, "PAYLOAD_MAX_BYTES", len(release[1]) + 2 * 1024)
    first = feed_page(world.hub, v1.code, after=v1.meta.int("feed_cursor"), catalogue_version=1)
    header = peek_header(first)
    assert header["more"] is True and header["next"] == header["after"] and _wires(first, v1) == []

    # By hand: the export carries the release first, then every change, and the station applies them all.
    out = tmp_path / "stick"
    hub_cli.cmd_export(argparse.Namespace(dir=world.root / "hub", station=v1.code, out=out, json=True))
    result = usb_files.import_files(v1, [out])
    assert result["rejected"] == [], result
    assert v1.catalogue().version == 2
    got = dict(v1.conn.execute("SELECT number, status FROM applications"))
    assert got == dict.fromkeys(numbers, "under_review")


def test_a_stored_release_over_the_cap_is_left_out_of_the_feed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = world.get("T1-V1")
    assert world.hub.publish(sample()) == 2
    monkeypatch.setattr(hub_feed, "RELEASE_FRAME_MAX_BYTES", 1024)  # as if published before the cap
    page = feed_page(world.hub, v1.code, after=0, catalogue_version=1)
    doc = open_document(page, kind="feed", recipient=v1.code, verify_key=v1.hub_key, unseal_key=lambda k: v1.keys.seal)
    assert isinstance(doc.body, dict) and doc.body["catalogue"] is None
