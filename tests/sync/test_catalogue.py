"""The catalogue model: strict parsing of the sample and of broken variants, the round trip, the
publish diff, and the acceptance rules and due dates read from it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sync.acceptance import AcceptanceError, check_acceptance, deferred_due_date, due_date
from sync.calendar import WorkCalendar
from sync.catalogue import Catalogue, CatalogueError, Item, Material, catalogue_to_doc, diff_catalogues, parse_catalogue

# The project's copy of the sample catalogue when it has one, else the shared original.
_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = next(
    (
        p
        for p in (
            _ROOT / "sanji" / "data" / "catalogue-sample.json",
            _ROOT.parent / "shared" / "data" / "catalogue-sample.json",
        )
        if p.exists()
    ),
    _ROOT.parent / "shared" / "data" / "catalogue-sample.json",
)
SAMPLE_DOC: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
CAT = parse_catalogue(SAMPLE_DOC)


def doc() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE_DOC)


def item_doc(d: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in d["items"] if i["code"] == code)
    return found


# --- parsing ---------------------------------------------------------------------------------------


def test_the_sample_parses() -> None:
    assert (CAT.district_code, CAT.district_name, CAT.version) == ("360802", "吉州区", 1)
    assert len(CAT.items) == 54 and len(CAT.themes) == 18
    assert CAT.calendar.covers(date(2026, 1, 1))
    assert (CAT.issued_at, CAT.expires_at) == ("", "")
    item = CAT.items["360802-0004"]
    assert item.kind == "promised" and not item.immediate
    assert (item.legal_days, item.promised_days, item.decided_at) == (30, 20, "district")
    assert item.accepted_at == ("village", "community", "township", "street", "district")
    assert item.inspection_required
    assert item.materials[2] == Material("家庭收入情况声明", required=True, deferrable=True)
    assert CAT.themes["T09"].items == ("360802-0012", "360802-0013")
    first = [i.code for i in CAT.items_for_tier("village")][:3]
    assert first == ["360802-0001", "360802-0002", "360802-0003"]
    assert all("village" in i.accepted_at for i in CAT.items_for_tier("village"))


def test_the_model_is_read_only() -> None:
    with pytest.raises(TypeError):
        CAT.items["x"] = CAT.items["360802-0001"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        CAT.version = 2  # type: ignore[misc]


def test_round_trip() -> None:
    assert catalogue_to_doc(CAT) == SAMPLE_DOC
    assert parse_catalogue(catalogue_to_doc(CAT)) == CAT
    d = doc()
    d["issued_at"] = "2026-01-01T00:00:00+08:00"
    d["expires_at"] = "2027-01-01T00:00:00+08:00"
    cat = parse_catalogue(d)
    assert cat.expires_at == "2027-01-01T00:00:00+08:00"
    assert catalogue_to_doc(cat) == d
    assert parse_catalogue(catalogue_to_doc(cat)) == cat


Mutation = Callable[[dict[str, Any]], object]


def _walk(d: dict[str, Any], path: list[Any]) -> Any:
    """Follow a path of keys and indexes; a string key into a list picks the entry with that code."""
    target: Any = d
    for key in path:
        if isinstance(target, list) and isinstance(key, str):
            target = next(entry for entry in target if entry["code"] == key)
        else:
            target = target[key]
    return target


def _set(path: list[Any], value: object) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        _walk(d, path[:-1])[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        del _walk(d, path[:-1])[path[-1]]

    return mutate


def _append_copy(list_key: str, index: int) -> Mutation:
    return lambda d: d[list_key].append(copy.deepcopy(d[list_key][index]))


BROKEN: list[tuple[str, Mutation, str]] = [
    (
        "missing field",
        _delete(["items", "360802-0005", "promised_days"]),
        "item 360802-0005: missing field(s) promised_days",
    ),
    (
        "misspelt field",
        _set(["items", "360802-0005", "promise_days"], 3),
        "item 360802-0005: unknown field(s) promise_days",
    ),
    (
        "days as text",
        _set(["items", "360802-0005", "legal_days"], "30"),
        "item 360802-0005.legal_days: must be an integer",
    ),
    (
        "days as bool",
        _set(["items", "360802-0005", "legal_days"], True),
        "item 360802-0005.legal_days: must be an integer",
    ),
    (
        "negative days",
        _set(["items", "360802-0005", "legal_days"], -1),
        "item 360802-0005.legal_days: must be at least 0",
    ),
    (
        "immediate with a promise",
        _set(["items", "360802-0001", "promised_days"], 3),
        "item 360802-0001.promised_days: must be 0 for an immediate item",
    ),
    (
        "promised without one",
        _set(["items", "360802-0005", "promised_days"], 0),
        "item 360802-0005.promised_days: must be at least 1",
    ),
    (
        "promise beyond the law",
        _set(["items", "360802-0005", "promised_days"], 31),
        "item 360802-0005.promised_days: 31 exceeds legal_days 30",
    ),
    ("unknown kind", _set(["items", "360802-0005", "kind"], "urgent"), "item 360802-0005.kind: 'urgent' is not a kind"),
    (
        "unknown tier",
        _set(["items", "360802-0005", "accepted_at"], ["village", "city"]),
        "item 360802-0005.accepted_at[1]: 'city' is not a tier",
    ),
    (
        "no tiers",
        _set(["items", "360802-0005", "accepted_at"], []),
        "item 360802-0005.accepted_at: must name at least one tier",
    ),
    (
        "tier twice",
        _set(["items", "360802-0005", "accepted_at"], ["village", "village"]),
        "item 360802-0005.accepted_at: lists a tier twice",
    ),
    (
        "unknown decider",
        _set(["items", "360802-0005", "decided_at"], "province"),
        "item 360802-0005.decided_at: 'province' is not a tier",
    ),
    (
        "flag as text",
        _set(["items", "360802-0005", "inspection_required"], "yes"),
        "item 360802-0005.inspection_required: must be true or false",
    ),
    (
        "material flag as int",
        _set(["items", "360802-0005", "materials", 0, "required"], 1),
        "item 360802-0005.materials[0].required: must be true or false",
    ),
    (
        "material without name",
        _delete(["items", "360802-0005", "materials", 0, "name"]),
        "item 360802-0005.materials[0]: missing field(s) name",
    ),
    (
        "material twice",
        _set(["items", "360802-0005", "materials", 1, "name"], "居民身份证"),
        "item 360802-0005.materials: material '居民身份证' is listed twice",
    ),
    ("blank name", _set(["items", "360802-0005", "name"], "  "), "item 360802-0005.name: must not be empty"),
    ("item not an object", _set(["items", 3], "360802-0004"), "items[3]: must be an object"),
    ("duplicate item", _append_copy("items", 0), "items[54].code: item code 360802-0001 is used twice"),
    ("duplicate theme", _append_copy("themes", 0), "themes[18].code: theme code T01 is used twice"),
    (
        "theme of a missing item",
        _set(["themes", 0, "items"], ["360802-0044", "360802-9999"]),
        "theme T01.items[1]: item 360802-9999 is not in the catalogue",
    ),
    ("empty theme", _set(["themes", 0, "items"], []), "theme T01.items: a theme must bundle at least one item"),
    ("no items", _set(["items"], []), "items: a catalogue must have at least one item"),
    ("version zero", _set(["version"], 0), "version: must be at least 1"),
    ("bad district", _set(["district", "code"], "3608"), "district.code: '3608' is not a 6-digit"),
    ("no district", _delete(["district"]), "missing field(s) district"),
    (
        "bad calendar",
        _set(["calendar", "2026", "makeup_workdays"], ["2026-10-09"]),
        "calendar: calendar 2026 makeup_workdays: 2026-10-09 is not a Saturday or Sunday",
    ),
    ("bad timestamp", _set(["issued_at"], "next Monday"), "issued_at: 'next Monday' is not an ISO 8601"),
    (
        "expiry first",
        lambda d: d.update(issued_at="2026-06-01T00:00:00+08:00", expires_at="2026-01-01T00:00:00+08:00"),
        "expires_at: 2026-01-01T00:00:00+08:00 is not after issued_at",
    ),
]


@pytest.mark.parametrize(("mutation", "message"), [(m, msg) for _, m, msg in BROKEN], ids=[n for n, _, _ in BROKEN])
def test_broken_catalogues_are_refused_naming_the_problem(mutation: Mutation, message: str) -> None:
    d = doc()
    mutation(d)
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(d)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_not_even_an_object() -> None:
    with pytest.raises(CatalogueError, match="must be an object"):
        parse_catalogue([])  # type: ignore[arg-type]


# --- diff ----------------------------------------------------------------------------------------


def test_diff_for_the_publish_screen() -> None:
    d = doc()
    d["version"] = 2
    d["items"] = [i for i in d["items"] if i["code"] != "360802-0054"]
    item_doc(d, "360802-0010")["promised_days"] = 3
    item_doc(d, "360802-0010")["accepted_at"] = ["township", "district"]
    new_item = copy.deepcopy(item_doc(d, "360802-0053"))
    new_item["code"] = "360802-0055"
    d["items"].append(new_item)
    d["themes"][1]["promised_days"] = 4
    d["calendar"]["2027"] = {"holidays": ["2027-01-01"], "makeup_workdays": []}
    new = parse_catalogue(d)
    assert diff_catalogues(CAT, new) == {
        "from_version": 1,
        "to_version": 2,
        "added": ["360802-0055"],
        "removed": ["360802-0054"],
        "changed": ["360802-0010"],
        "changed_fields": {"360802-0010": ["promised_days", "accepted_at"]},
        "themes_added": [],
        "themes_removed": [],
        "themes_changed": ["T02"],
        "calendar_changed": True,
    }
    unchanged = diff_catalogues(CAT, CAT)
    assert unchanged["added"] == unchanged["removed"] == unchanged["changed"] == []
    assert unchanged["calendar_changed"] is False


# --- acceptance ----------------------------------------------------------------------------------


def _refusal(item: Item, tier: str, submitted: list[str], deferred: list[str]) -> AcceptanceError:
    with pytest.raises(AcceptanceError) as info:
        check_acceptance(item, tier=tier, submitted=submitted, deferred=deferred)
    return info.value


def test_a_complete_application_is_accepted() -> None:
    item = CAT.items["360802-0004"]
    names = [m.name for m in item.materials]
    check_acceptance(item, tier="village", submitted=names, deferred=[])
    check_acceptance(
        item, tier="village", submitted=[n for n in names if n != "家庭收入情况声明"], deferred=["家庭收入情况声明"]
    )


def test_the_wrong_tier_is_named() -> None:
    school = CAT.items["360802-0044"]  # district only
    e = _refusal(school, "village", ["申请报告"], [])
    assert (e.code, str(e)) == ("tier_not_allowed", "该事项不能在村级站点受理")
    assert str(_refusal(school, "community", [], [])) == "该事项不能在社区级站点受理"
    assert str(_refusal(CAT.items["360802-0024"], "township", [], [])) == "该事项不能在镇级站点受理"
    assert _refusal(school, "field", [], []).code == "unknown_tier"


def test_material_refusals() -> None:
    item = CAT.items["360802-0004"]
    everything = [m.name for m in item.materials]
    unknown = _refusal(item, "village", [*everything, "结婚证"], [])
    assert unknown.code == "unknown_material" and unknown.materials == ("结婚证",)
    assert "结婚证" in str(unknown)
    not_deferrable = _refusal(item, "village", everything[1:], ["居民身份证"])
    assert not_deferrable.code == "not_deferrable"
    assert str(not_deferrable) == "材料「居民身份证」不允许容缺，请补齐后再受理"
    missing = _refusal(item, "village", ["居民身份证", "户口簿", "家庭经济状况核对授权书"], [])
    assert missing.code == "missing_material" and missing.materials == ("家庭收入情况声明",)
    assert str(missing) == "缺少必要材料「家庭收入情况声明」，请补齐或按容缺受理"
    both = _refusal(item, "village", everything, ["家庭收入情况声明"])
    assert both.code == "material_conflict"


def test_optional_materials_may_be_left_out() -> None:
    item = Item(
        "X-1",
        "测试事项",
        "测试",
        "promised",
        10,
        5,
        ("village",),
        "township",
        False,
        (Material("申请表", True, False), Material("照片", False, False)),
    )
    check_acceptance(item, tier="village", submitted=["申请表"], deferred=[])


# --- due dates -----------------------------------------------------------------------------------


def test_due_dates() -> None:
    cal = CAT.calendar
    accepted = date(2026, 9, 30)  # the eve of the National Day week
    assert due_date(CAT.items["360802-0001"], accepted, cal) == accepted  # immediate
    # promised 1: Thu 8 Oct is the first working day after the holiday week
    assert due_date(CAT.items["360802-0042"], accepted, cal) == date(2026, 10, 8)
    # promised 20: Oct 8 9 10(Sat, make-up) 12-16 19-23 26-30 Nov 2 3
    assert due_date(CAT.items["360802-0004"], accepted, cal) == date(2026, 11, 3)


def test_deferred_materials_are_due_within_five_working_days_or_the_promise() -> None:
    cal = CAT.calendar
    accepted = date(2026, 9, 30)
    # five working days: Oct 8, 9, 10 (make-up Saturday), 12, 13
    assert deferred_due_date(CAT.items["360802-0004"], accepted, cal) == date(2026, 10, 13)  # promised 20
    assert deferred_due_date(CAT.items["360802-0015"], accepted, cal) == date(2026, 10, 13)  # immediate
    # promised 3 is shorter than five: Oct 8, 9, 10
    assert deferred_due_date(CAT.items["360802-0028"], accepted, cal) == date(2026, 10, 10)


def test_a_catalogue_can_be_built_directly() -> None:
    cat = Catalogue("360802", "吉州区", 1, {}, {}, WorkCalendar())
    assert cat.items_for_tier("village") == ()
