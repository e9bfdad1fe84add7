"""The catalogue as staff read it: the items their tier accepts, and the nearest items to a miss."""

from __future__ import annotations

from sync.catalogue_view import listing, suggest, suggestion_text
from tests.sync.test_catalogue import CAT


def test_the_listing_holds_exactly_the_items_this_tier_accepts_with_their_materials() -> None:
    for tier in ("village", "township", "district", "field"):
        out = listing(CAT, 7, tier)
        assert out["version"] == 7 and out["tier"] == tier
        codes = [e["code"] for e in out["items"]]  # type: ignore[attr-defined]
        assert codes == [i.code for i in CAT.items.values() if tier in i.accepted_at]
    entry = next(e for e in listing(CAT, 1, "village")["items"] if e["code"] == "360802-0001")  # type: ignore[attr-defined]
    assert entry["materials"] == [
        {"name": m.name, "required": m.required, "deferrable": m.deferrable} for m in CAT.items["360802-0001"].materials
    ]
    assert {"promised_days", "inspection_required", "kind", "name"} <= set(entry)


def test_a_mistyped_code_suggests_the_code_it_nearly_is() -> None:
    for real in CAT.items_for_tier("village"):
        typo = real.code[:2] + real.code[3:]  # a digit dropped: "36802-0001"
        found = suggest(CAT, typo, "village")
        assert found[0] == real and len(found) <= 3, (typo, [f.code for f in found])


def test_a_name_fragment_finds_the_items_that_contain_it() -> None:
    item = next(iter(CAT.items_for_tier("village")))
    fragment = item.name[:4]
    found = suggest(CAT, fragment, "village")
    assert item in found or all(fragment in f.name for f in found)
    assert all("village" in f.accepted_at for f in found), "never suggest what this tier cannot accept"


def test_nothing_near_points_to_the_full_list() -> None:
    assert suggest(CAT, "zzzz-qqqq", "village") == []
    assert "sanji node catalogue" in suggestion_text([])
    assert suggestion_text(suggest(CAT, next(iter(CAT.items_for_tier("village"))).code, "village")).startswith(
        "是否要找："
    )
