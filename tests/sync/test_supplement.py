"""补交材料 at the admission question (``sync/supplement.py``) and in the fold: who may record a deferred
(容缺) material as received, for which materials, when, and that concurrent receipts of different
materials at a station and at the hub both survive the merge. Codes and ids are made up."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sync.admission import judge
from sync.change import Change
from sync.fold import Record, fold, values
from sync.hlc import pack_hlc
from sync.model import AUTHORITY, Actor, RecordContext
from sync.verdict import Facts

DAY_MS = 86_400_000
ACCEPTED_MS = 1_772_413_200_000  # 2026-03-02 09:00 China time
ACCEPTED = "2026-03-02T09:00:00+08:00"
VILLAGE = Actor("V0101", "village")
NEIGHBOUR = Actor("V0202", "village")
TOWNSHIP = Actor("T01", "township")
HUB = Actor("D00", "district")
CTX = RecordContext("V0101", "T01", "township")
APP = "app-supplement-0001"


def cell(value: object, ms: int = ACCEPTED_MS, origin: str = "V0101") -> tuple[int, str, object, int]:
    return (pack_hlc(ms, 0), origin, value, 0)


def record(status: str = "approved", status_ms: int = ACCEPTED_MS + DAY_MS) -> Record:
    """An application accepted on 2026-03-02 with two materials deferred (容缺) and one submitted."""
    return {
        "station": cell("V0101"),
        "accepted_at": cell(ACCEPTED),
        "kind": cell("promised"),
        "status": cell(status, status_ms),
        "m.银行卡": cell(["deferred", "2026-03-09"]),
        "m.户口簿": cell(["deferred", "2026-03-09"]),
        "m.居民身份证": cell(["submitted", ""]),
    }


def change(fields: dict[str, object], *, actor: Actor = VILLAGE, ms: int = ACCEPTED_MS + 2 * DAY_MS) -> Change:
    base = {k: pack_hlc(ACCEPTED_MS, 0) for k in fields}
    return Change(actor.code, 1, 9, pack_hlc(ms, 1), "application", APP, fields, base)


def ask(fields: dict[str, object], *, actor: Actor = VILLAGE, current: Record | None = None, ms: int | None = None):  # type: ignore[no-untyped-def]
    c = change(fields, actor=actor, ms=ms if ms is not None else ACCEPTED_MS + 2 * DAY_MS)
    return judge(c, actor, Facts(CTX, current=record() if current is None else current))


def test_the_accepting_station_and_the_hub_record_a_deferred_material() -> None:
    for actor in (VILLAGE, HUB):
        verdict = ask({"m.银行卡": ["supplemented", "2026-03-04"]}, actor=actor)
        assert verdict.admitted, verdict


def test_nobody_else_records_it() -> None:
    for actor in (NEIGHBOUR, TOWNSHIP):  # the township decides the item, but took no material
        verdict = ask({"m.银行卡": ["supplemented", "2026-03-04"]}, actor=actor)
        assert (verdict.admitted, verdict.code) == (False, "not_authorised"), verdict
        assert "受理站点或区局" in verdict.reason or "超出站点权限" in verdict.reason


def test_only_a_material_deferred_at_acceptance() -> None:
    for name in ("m.居民身份证", "m.结婚证"):  # submitted at the window; never part of the file
        verdict = ask({name: ["supplemented", "2026-03-04"]})
        assert (verdict.admitted, verdict.code) == (False, "not_deferred"), verdict
        assert "不是容缺材料" in verdict.reason


def test_after_acceptance_a_material_is_not_written_back_to_submitted_or_deferred() -> None:
    for value in (["submitted", ""], ["deferred", "2026-04-30"]):
        verdict = ask({"m.银行卡": value})
        assert (verdict.admitted, verdict.code) == (False, "not_a_command"), verdict


def test_a_second_receipt_of_the_same_material_is_admitted() -> None:
    # Two windows took the same document while offline: both are honest, the fold keeps the later one.
    current = {**record(), "m.银行卡": cell(["supplemented", "2026-03-03"], ACCEPTED_MS + DAY_MS, "D00")}
    assert ask({"m.银行卡": ["supplemented", "2026-03-04"]}, current=current).admitted


@given(offset=st.integers(-400, 400))
def test_the_received_date_lies_between_acceptance_and_the_day_it_was_written(offset: int) -> None:
    written_ms = ACCEPTED_MS + 10 * DAY_MS  # 2026-03-12
    day = date(2026, 3, 12) + timedelta(days=offset)
    verdict = ask({"m.银行卡": ["supplemented", day.isoformat()]}, ms=written_ms)
    sane = date(2026, 3, 2) <= day <= date(2026, 3, 13)  # one day of slack at midnight
    assert verdict.admitted == sane, (day, verdict)
    if not sane:
        assert verdict.code == "bad_supplement_date" and "收到日期" in verdict.reason


def test_a_receipt_needs_its_date_unless_it_comes_back_from_supplement_requested() -> None:
    verdict = ask({"m.银行卡": ["supplemented", ""]})
    assert (verdict.admitted, verdict.code) == (False, "bad_supplement_date")
    # The resubmit after 补正 (node.commands.transition) writes its materials with the status, undated.
    back = ask(
        {"status": "accepted", "m.银行卡": ["supplemented", ""]},
        current=record("supplement_requested", ACCEPTED_MS + DAY_MS),
    )
    assert back.admitted, back


def test_not_once_the_file_is_closed() -> None:
    for status in ("completed", "delivered", "withdrawn", "not_accepted"):
        verdict = ask({"m.银行卡": ["supplemented", "2026-03-04"]}, current=record(status))
        assert (verdict.admitted, verdict.code) == (False, "application_closed"), (status, verdict)
        assert "不再登记补交材料" in verdict.reason
    # Written before the closing but arriving after it: it happened while the file was open.
    late_closing = record("completed", ACCEPTED_MS + 5 * DAY_MS)
    assert ask({"m.银行卡": ["supplemented", "2026-03-04"]}, current=late_closing).admitted


def test_concurrent_receipts_of_different_materials_at_station_and_hub_both_survive() -> None:
    created = Change(
        "V0101",
        1,
        1,
        pack_hlc(ACCEPTED_MS, 0),
        "application",
        APP,
        {"m.银行卡": ["deferred", "2026-03-09"], "m.户口簿": ["deferred", "2026-03-09"]},
        {},
    )
    seen = pack_hlc(ACCEPTED_MS, 0)
    at_station = Change(
        "V0101",
        1,
        2,
        pack_hlc(ACCEPTED_MS + DAY_MS, 0),
        "application",
        APP,
        {"m.银行卡": ["supplemented", "2026-03-03"]},
        {"m.银行卡": seen},
    )
    at_hub = Change(
        "D00",
        1,
        5,
        pack_hlc(ACCEPTED_MS + DAY_MS, 7),
        "application",
        APP,
        {"m.户口簿": ["supplemented", "2026-03-03"]},
        {"m.户口簿": seen},
    )

    def authority(origin: str) -> int:
        return AUTHORITY["district" if origin == "D00" else "village"]

    for order in ([created, at_station, at_hub], [at_hub, created, at_station], [at_station, at_hub, created]):
        merged = values(fold(order, authority)[("application", APP)])
        assert merged["m.银行卡"] == ["supplemented", "2026-03-03"]
        assert merged["m.户口簿"] == ["supplemented", "2026-03-03"]
