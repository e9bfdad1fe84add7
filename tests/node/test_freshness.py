"""The newest genuine hub time a station has seen, a USB page older than that, and the stale warning."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hub import operations
from hub.feed import feed_page
from node import freshness, uplink, usb_files
from node.station import Station
from node.status import gather
from protocol.frame import peek_header
from replica.ids import iso_from_ms
from tests.conftest import MINUTE_MS, World

DISTRICT_ITEM = "360802-0004"


def _page(world: World, st: Station) -> bytes:
    return feed_page(world.hub, st.code, after=st.meta.int("feed_cursor"), catalogue_version=1)


def test_the_newest_hub_time_is_kept_and_an_older_usb_page_says_so(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    number = str(world.accept(v1, DISTRICT_ITEM)["number"])
    world.push(v1)
    old = _page(world, v1)
    assert uplink.apply_feed(v1, old).hub_ms == world.clock()
    first = v1.meta.int("hub_time")
    assert first == world.clock()

    world.clock.advance(10 * MINUTE_MS)
    operations.transition(world.hub, number, "under_review")
    assert uplink.apply_feed(v1, _page(world, v1)).pulled == 1
    assert v1.meta.int("hub_time") == first + 10 * MINUTE_MS
    assert gather(v1, hub_reachable=None)["hub_time"] == iso_from_ms(first + 10 * MINUTE_MS)

    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "old.sjd").write_bytes(old)
    out = usb_files.import_files(v1, [stick])
    assert out["accepted"] == 1 and out["rejected"] == []
    older = out["older"]
    assert isinstance(older, list) and [Path(o["file"]).name for o in older] == ["old.sjd"]
    assert "比本站已有的区局数据旧" in older[0]["reason"] and iso_from_ms(first) in older[0]["reason"]
    assert v1.meta.int("hub_time") == first + 10 * MINUTE_MS, "an old page never moves the hub time back"


def test_a_page_answers_the_pulls_nonce_in_its_signed_header(make_world: Callable[..., World]) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    page = feed_page(world.hub, v1.code, after=0, catalogue_version=1, nonce=b"n" * 16)
    assert peek_header(page)["nonce"] == b"n" * 16
    assert "nonce" not in peek_header(feed_page(world.hub, v1.code, after=0, catalogue_version=1))


def test_the_stale_warning_needs_a_hub_address_and_a_round_without_an_answered_page(
    make_world: Callable[..., World],
) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    assert freshness.summary(v1) == {
        "hub_time": None,
        "hub_stale": False,
        "catalogue_expires_soon": False,
        "hub_keys_expire_soon": False,
        "freshness_warning": "",
    }
    with v1.transaction():
        v1.meta.set("stale_rounds", 2)
    assert freshness.summary(v1)["hub_stale"] is False, "a USB-only station claims no hub online"
    with v1.transaction():
        v1.meta.set("hub_url", "http://127.0.0.1:9")
    got = freshness.summary(v1)
    assert got["hub_stale"] is True and "区局数据可能已停更" in str(got["freshness_warning"])
    assert "最近 2 次" in str(got["freshness_warning"])


def test_a_catalogue_release_near_its_end_warns_before_it_expires(make_world: Callable[..., World]) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    expires = v1.conn.execute("SELECT expires_at FROM catalogues").fetchone()[0]
    world.clock.advance(170 * 24 * 60 * MINUTE_MS)  # ten days before the 180-day release ends
    got = freshness.summary(v1)
    assert got["catalogue_expires_soon"] is True and got["hub_stale"] is False
    assert "区局数据可能已停更" in str(got["freshness_warning"]) and expires[:10] in str(got["freshness_warning"])
    world.clock.advance(11 * 24 * 60 * MINUTE_MS)  # expired: node status says that in its own words
    assert freshness.summary(v1)["catalogue_expires_soon"] is False


def test_a_key_list_near_its_end_warns_before_the_station_must_refuse_the_hub(make_world: Callable[..., World]) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    expires = v1.meta.int("hub_keys_expires")
    assert expires > world.clock() + 30 * 24 * 60 * MINUTE_MS  # a fresh list warns nobody
    assert freshness.summary(v1)["hub_keys_expire_soon"] is False
    world.clock.advance(expires - world.clock() - 10 * 24 * 60 * MINUTE_MS)  # ten days left
    got = freshness.summary(v1)
    assert got["hub_keys_expire_soon"] is True
    assert "区局数据可能已停更" in str(got["freshness_warning"]) and "密钥清单" in str(got["freshness_warning"])


def test_the_reported_problem_keeps_the_signed_pull_under_the_header_cap(make_world: Callable[..., World]) -> None:
    from protocol.limits import REQUEST_HEADER_MAX_CHARS

    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    with v1.transaction():
        v1.meta.set("hub_url", "http://127.0.0.1:9")
        v1.meta.set("stale_rounds", 99)
        v1.meta.set("last_error", "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2000)))  # incompressible
    report = freshness.report(v1)
    assert len(report) == freshness.REPORT_CHARS and report.startswith("区局数据可能已停更")
    assert len(uplink.pull_request(v1, 0, bytes(16))) < REQUEST_HEADER_MAX_CHARS
