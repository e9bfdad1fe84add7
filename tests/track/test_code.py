"""The tracking code itself: its shape and strength, how citizens may type it, the hub's keyed hash,
and who may write it (sync/tracking.py, sync/application_rules.py)."""

from __future__ import annotations

import math
import os
import random

import pytest

from protocol.codec import pack
from sync import tracking
from sync.scope import change_digest

AMBIGUOUS = set("01OILU")


def test_a_code_has_at_least_60_bits_in_three_typeable_groups_without_ambiguous_characters() -> None:
    assert len(tracking.ALPHABET) == len(set(tracking.ALPHABET)) == 30
    assert not AMBIGUOUS & set(tracking.ALPHABET)
    assert math.floor(tracking.LENGTH * math.log2(len(tracking.ALPHABET))) >= 60
    for _ in range(2000):
        code = tracking.draw(os.urandom(tracking.RANDOM_BYTES))
        groups = code.split("-")
        assert [len(g) for g in groups] == [5, 5, 5]
        assert set("".join(groups)) <= set(tracking.ALPHABET)
        assert tracking.is_code(code)


def test_codes_are_spread_over_the_whole_alphabet() -> None:
    # 3000 codes, 45,000 symbols: every symbol is drawn, none more than twice as often as expected.
    counts: dict[str, int] = {}
    for _ in range(3000):
        for c in tracking.draw(os.urandom(tracking.RANDOM_BYTES)).replace("-", ""):
            counts[c] = counts.get(c, 0) + 1
    expected = 45_000 / 30
    assert set(counts) == set(tracking.ALPHABET)
    assert all(expected / 2 < n < expected * 2 for n in counts.values())


def test_a_citizen_may_type_it_in_lower_case_with_or_without_dashes_and_spaces() -> None:
    code = tracking.draw(bytes(range(15)))
    compact = code.replace("-", "")
    for typed in (code, code.lower(), compact, compact.lower(), " ".join(code.split("-")), f"  {code}  "):
        assert tracking.normalize(typed) == compact


NOT_CODES = [
    "",
    "ABCDE",
    "ABCDE-FGHJK-MNPQ",
    "ABCDE-FGHJK-MNPQRS",
    "ABCDE-FGHJK-MNPQ0",
    "ABCDE-FGHJK-MNPQI",
    "../../etc/passwd",
    "ABCDE/FGHJK/MNPQR",
    "ＡＢＣＤＥ-ＦＧＨＪＫ-ＭＮＰＱＲ",
    "ABCDE-FGHJK-MNPQ\x00",
    "A" * 10_000,
    "查询码查询码查询码查询码查询码",
]


@pytest.mark.parametrize("typed", NOT_CODES)
def test_anything_else_is_not_a_code(typed: str) -> None:
    assert tracking.normalize(typed) is None


def test_the_hubs_hash_is_keyed() -> None:
    code = tracking.draw(os.urandom(15))
    k1, k2 = os.urandom(32), os.urandom(32)
    assert tracking.conceal(k1, code) == tracking.conceal(k1, code.lower().replace("-", ""))
    assert tracking.conceal(k1, code) != tracking.conceal(k2, code)
    assert len(tracking.conceal(k1, code)) == 64


def test_a_creation_carries_a_code_or_nothing() -> None:
    code = tracking.draw(os.urandom(15))
    assert tracking.creation_problem({}) is None
    assert tracking.creation_problem({"tracking": code}) is None
    assert tracking.creation_problem({"tracking": ""}) is None  # as the hub logs it
    for bad in ("张三 13900000000", code.lower(), "X" * 15, 12345):
        assert tracking.creation_problem({"tracking": bad}) is not None


def test_anti_entropy_compares_an_application_change_without_its_code() -> None:
    fields = {"number": "N1", "status": "accepted", "tracking": tracking.draw(os.urandom(15))}
    at_station = change_digest("V1", 1, 1, 5, "application", "a", pack(fields), pack({}))
    at_hub = change_digest("V1", 1, 1, 5, "application", "a", pack({**fields, "tracking": ""}), pack({}))
    assert at_station == at_hub
    other = change_digest("V1", 1, 1, 5, "application", "a", pack({**fields, "status": "withdrawn"}), pack({}))
    assert other != at_hub  # everything else still counts


def test_draw_is_not_biased_towards_small_codes() -> None:
    rng = random.Random(7)
    firsts = [tracking.draw(rng.randbytes(15))[-1] for _ in range(3000)]
    assert len(set(firsts)) == 30
