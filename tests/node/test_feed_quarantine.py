"""One bad feed page never blocks the rest of the feed, and never lets anyone skip pages unseen.

A page the pinned hub key signed but that cannot be applied is set aside with its reason and the cursor
moves past it (the following pages apply); a page that does not verify is set aside and the cursor stays.
Every page set aside is counted in `node status` (issue 21, "A release no station can receive").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hub import operations
from hub.feed import feed_page
from node import feed_quarantine, usb_files
from node.station import Station
from node.status import gather
from protocol.document import sign_document
from protocol.frame import peek_header
from protocol.keys import signing_key_from_seed
from tests.conftest import World

DISTRICT_ITEM = "360802-0004"  # decided at the district, so the hub may move it


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))


@pytest.fixture
def v1(world: World) -> Station:
    st = world.get("T1-V1")
    while world.pull(st).more:  # the enrolment-time feed, so the cursor is where a station's would be
        pass
    return st


def two_decisions(world: World, v1: Station) -> tuple[list[str], list[bytes]]:
    """Two applications the hub moves to review, and the genuine one-change pages that carry the moves."""
    numbers = [str(world.accept(v1, DISTRICT_ITEM)["number"]) for _ in range(2)]
    world.push(v1)
    for n in numbers:
        operations.transition(world.hub, n, "under_review")
    pages, after = [], v1.meta.int("feed_cursor")
    for _ in numbers:
        page = feed_page(world.hub, v1.code, after=after, catalogue_version=1, limit=1)
        pages.append(page)
        after = int(str(peek_header(page)["next"]))
    return numbers, pages


def statuses(st: Station) -> dict[str, str]:
    return {str(n): str(s) for n, s in st.conn.execute("SELECT number, status FROM applications")}


def unusable_twin(world: World, page: bytes, **header: object) -> bytes:
    """What the hub would sign for the same span if the body could not be applied (an invalid change)."""
    signed = peek_header(page)
    extra = {"after": signed["after"], "next": signed["next"], "more": signed["more"]}
    extra.update(header)
    body = {
        "station": signed["recipient"],
        "after": signed["after"],
        "next": signed["next"],
        "more": True,
        "changes": [["not", "a", "change"]],
        "generation": str(world.hub.store.get_meta("generation", "")),
    }
    return sign_document(
        "feed",
        body,
        signer=world.hub.hub_id,
        recipient=str(signed["recipient"]),
        signing_key=world.hub.keys.sign,
        extra_header={k: v for k, v in extra.items() if v is not None},
    )


def test_a_genuine_page_that_cannot_be_applied_is_set_aside_and_the_next_one_applies(world: World, v1: Station) -> None:
    numbers, pages = two_decisions(world, v1)
    start = v1.meta.int("feed_cursor")
    bad = unusable_twin(world, pages[0])

    first = feed_quarantine.take_page(v1, bad, source="http")
    assert first.result is None and first.skipped and first.more
    assert "已隔离并继续后续数据页" in first.problem and "invalid change" in first.problem
    assert v1.meta.int("feed_cursor") == peek_header(pages[0])["next"] > start

    second = feed_quarantine.take_page(v1, pages[1], source="http")
    assert second.result is not None and second.result.pulled == 1
    assert statuses(v1) == {numbers[0]: "accepted", numbers[1]: "under_review"}

    status = gather(v1, hub_reachable=None)
    assert (status["feed_quarantined"], status["feed_skipped"]) == (1, 1)
    latest = status["feed_quarantine_latest"]
    assert isinstance(latest, dict) and latest["skipped"] is True and latest["source"] == "http"
    assert (latest["skipped_from"], latest["skipped_to"]) == (start, peek_header(pages[0])["next"])
    kept = v1.conn.execute("SELECT frame FROM feed_quarantine").fetchone()[0]
    assert bytes(kept) == bad, "a genuine page set aside is kept whole, to look at or apply later"


@pytest.mark.parametrize("how", ["flipped", "other_key", "no_signed_after"])
def test_a_page_that_cannot_be_verified_or_placed_never_moves_the_cursor(world: World, v1: Station, how: str) -> None:
    numbers, pages = two_decisions(world, v1)
    start = v1.meta.int("feed_cursor")
    if how == "flipped":
        data = bytearray(pages[0])
        data[len(data) // 2] ^= 0x01
        bad = bytes(data)
    elif how == "other_key":  # someone else's key, claiming a span far ahead
        body = {"station": v1.code, "after": start, "next": start + 10_000, "more": True, "changes": []}
        bad = sign_document(
            "feed",
            body,
            signer=world.hub.hub_id,
            recipient=v1.code,
            signing_key=signing_key_from_seed(b"\x07" * 32),
            extra_header={"after": start, "next": start + 10_000, "more": True},
        )
    else:  # a genuine page without its span in the signed header (a hub from before): cannot be placed
        bad = unusable_twin(world, pages[0], after=None)

    out = feed_quarantine.take_page(v1, bad, source="file:x.sjd")
    assert out.result is None and not out.skipped and "未跳过" in out.problem
    assert v1.meta.int("feed_cursor") == start
    status = gather(v1, hub_reachable=None)
    assert (status["feed_quarantined"], status["feed_skipped"]) == (1, 0)
    assert v1.conn.execute("SELECT frame FROM feed_quarantine").fetchone()[0] is None

    # The genuine pages still apply, in order, with nothing skipped.
    for page in pages:
        assert feed_quarantine.take_page(v1, page, source="http").result is not None
    assert statuses(v1) == dict.fromkeys(numbers, "under_review")


def test_the_same_bad_page_again_is_one_row_counted_twice(world: World, v1: Station) -> None:
    _, pages = two_decisions(world, v1)
    data = bytearray(pages[0])
    data[-3] ^= 0x01
    for _ in range(2):
        feed_quarantine.take_page(v1, bytes(data), source="http")
    assert v1.conn.execute("SELECT COUNT(*), MAX(times) FROM feed_quarantine").fetchone() == (1, 2)


def test_a_page_imported_too_early_is_not_set_aside(world: World, v1: Station) -> None:
    _, pages = two_decisions(world, v1)
    start = v1.meta.int("feed_cursor")
    out = feed_quarantine.take_page(v1, pages[1], source="file:late.sjd")
    assert out.result is None and not out.skipped and "请先导入更早的数据页" in out.problem
    assert v1.meta.int("feed_cursor") == start
    assert gather(v1, hub_reachable=None)["feed_quarantined"] == 0


def test_a_release_the_station_refuses_does_not_cost_it_the_pages_changes(
    world: World, v1: Station, tmp_path: Path
) -> None:
    numbers, pages = two_decisions(world, v1)
    from hub.service import Hub

    other = Hub.create(tmp_path / "other", district="360802", name="冒充的区", catalogue=None, clock=world.clock)
    try:
        forged = other.store.latest_release()
        assert forged is not None
        signed = peek_header(pages[0])
        start = int(str(signed["after"]))
        rows = world.hub.store.feed_page(v1.code, start, 1)
        body = {
            "station": v1.code,
            "after": start,
            "next": signed["next"],
            "more": True,
            "changes": [w for _, w in rows],
            "origins": {v1.code: "village", world.hub.hub_id: "district"},
            "catalogue": forged[1],
            "generation": str(world.hub.store.get_meta("generation", "")),
        }
        page = sign_document(
            "feed",
            body,
            signer=world.hub.hub_id,
            recipient=v1.code,
            signing_key=world.hub.keys.sign,
            extra_header={"after": start, "next": signed["next"], "more": True},
        )
    finally:
        other.close()
    out = feed_quarantine.take_page(v1, page, source="http")
    assert out.result is not None and out.result.catalogue == "refused" and out.result.pulled == 1
    assert statuses(v1)[numbers[0]] == "under_review"
    assert v1.catalogue().version == 1 and "事项目录未通过校验" in v1.meta.text("catalogue_warning")


def test_usb_import_sets_a_bad_genuine_page_aside_and_applies_the_rest(
    world: World, v1: Station, tmp_path: Path
) -> None:
    numbers, pages = two_decisions(world, v1)
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "T1-V1_feed_a.sjd").write_bytes(unusable_twin(world, pages[0]))
    (stick / "T1-V1_feed_b.sjd").write_bytes(pages[1])
    out = usb_files.import_files(v1, [stick])
    assert out["accepted"] == 1
    rejected = out["rejected"]
    assert isinstance(rejected, list) and [Path(r["file"]).name for r in rejected] == ["T1-V1_feed_a.sjd"]
    assert "已隔离" in rejected[0]["reason"]
    assert statuses(v1) == {numbers[0]: "accepted", numbers[1]: "under_review"}
    assert gather(v1, hub_reachable=None)["feed_skipped"] == 1
