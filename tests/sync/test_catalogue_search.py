"""Search as staff speak (issue 19 item 10): abbreviations such as 低保 and pinyin initials such as zdshbz
find 最低生活保障申请; the pure rules in sync/catalogue_view.py, with present/pinyin.py's initials."""

from __future__ import annotations

from present.pinyin import initials
from sync.catalogue_view import find, item_terms, listing, listing_text, matches, suggest
from tests.sync.test_catalogue import CAT

LOW_INCOME = "最低生活保障申请"


def names(query: str, tier: str = "village") -> list[str]:
    return [i.name for i in find(CAT.items_for_tier(tier), query, initials)]


def test_initials_are_the_first_letters_of_each_reading() -> None:
    assert initials(LOW_INCOME) == "zdshbzsq"
    assert initials("残疾人证申领受理") == "cjrzslsl"
    assert initials("动物防疫条件合格证核发(受理)") == "dwfytjhgzhf(sl)"  # punctuation kept, not dropped


def test_abbreviations_and_initials_find_the_low_income_item() -> None:
    for q in ("低保", "zdshbz", "ZDSHBZ", " zdsh ", "最低生活保障", "360802-0004"):
        assert names(q) == [LOW_INCOME], q
    assert "城乡居民基本医疗保险参保登记" in names("医保")
    assert names("残疾证") == ["残疾人证申领受理"]
    assert set(names("社保")) >= {"城乡居民基本养老保险参保登记", "城乡居民基本医疗保险参保登记"}


def test_a_query_that_is_nothing_finds_nothing_and_an_empty_one_everything() -> None:
    assert names("qqqqqq") == [] and names("不存在的事项") == []
    assert len(names("")) == len(CAT.items_for_tier("village"))
    assert not matches(["最低生活保障申请"], "低保")  # the abbreviation comes from item_terms, not from matching


def test_initials_are_optional_so_sync_needs_no_pinyin_library() -> None:
    item = CAT.items["360802-0004"]
    assert "低保" in item_terms(item) and "zdshbzsq" not in item_terms(item)
    assert "zdshbzsq" in item_terms(item, initials)
    assert [i.name for i in find(CAT.items.values(), "zdshbz")] == []  # without initials, no pinyin match


def test_a_mistyped_item_suggests_by_abbreviation_too() -> None:
    assert suggest(CAT, "低保", "village", initials=initials)[0].name == LOW_INCOME
    assert suggest(CAT, "zdshbz", "village", initials=initials)[0].name == LOW_INCOME


def test_the_listing_keeps_only_what_the_query_finds() -> None:
    out = listing(CAT, 3, "village", "zdshbz", initials)
    assert [e["name"] for e in out["items"]] == [LOW_INCOME] and out["query"] == "zdshbz"  # type: ignore[index]
    assert "与「zdshbz」相符的 1 项" in listing_text(out)
    whole = listing(CAT, 3, "village")
    assert "query" not in whole and "可受理 " in listing_text(whole)
