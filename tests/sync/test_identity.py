"""ID number and phone checks, and the masks. Every ID number here is made by the generator below;
none belongs to a real person."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.identity import (
    InvalidIdentity,
    check_id_number,
    check_phone,
    id_birth_date,
    mask_id,
    mask_name,
    mask_phone,
)

TODAY = date(2026, 3, 2)


def make_id(region: str, born: date, sequence: int) -> str:
    """An ID number with a correct check character, computed independently of sync.identity:
    the weight of position i (from 1) is 2**(18 - i) mod 11, and the check value c satisfies
    sum + c == 1 (mod 11), with 10 written as X."""
    body = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{sequence:03d}"
    total = sum(int(ch) * pow(2, 17 - i, 11) for i, ch in enumerate(body))
    c = (12 - total % 11) % 11
    return body + ("X" if c == 10 else str(c))


REGIONS = st.sampled_from(["360802", "360821", "110105", "440305", "510104"])
BIRTHS = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
IDS = st.builds(make_id, REGIONS, BIRTHS, st.integers(min_value=0, max_value=999))


@given(IDS)
def test_a_generated_id_passes_and_comes_back_unchanged(id_number: str) -> None:
    assert check_id_number(id_number, today=TODAY) == id_number
    assert check_id_number(id_number.lower(), today=TODAY) == id_number


@given(IDS, st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
def test_any_single_digit_change_is_caught(id_number: str, position: int, delta: int) -> None:
    digit = (int(id_number[position]) + delta) % 10
    wrong = id_number[:position] + str(digit) + id_number[position + 1 :]
    with pytest.raises(InvalidIdentity) as info:
        check_id_number(wrong, today=TODAY)
    try:
        born = id_birth_date(wrong)
    except ValueError:
        return  # the change broke the date, which is caught first
    if date(1900, 1, 1) <= born <= TODAY:
        assert info.value.code == "id_checksum"


def _id_ending_in_x() -> str:
    for sequence in range(1000):
        candidate = make_id("360802", date(1990, 5, 17), sequence)
        if candidate.endswith("X"):
            return candidate
    raise AssertionError("no sequence gives an X check character")


def test_lowercase_x_and_full_width_input_are_normalised() -> None:
    with_x = _id_ending_in_x()
    assert check_id_number(with_x[:-1] + "x", today=TODAY) == with_x
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in with_x)  # what a Chinese IME types
    assert check_id_number(f" {full_width} ", today=TODAY) == with_x


def test_the_checksum_message_tells_staff_where_to_look() -> None:
    good = make_id("360802", date(1985, 9, 6), 711)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(InvalidIdentity, match="身份证号码校验位不符，请核对最后一位") as info:
        check_id_number(bad, today=TODAY)
    assert info.value.code == "id_checksum"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("36080219850906711", "id_length"),
        ("3608021985090671123", "id_length"),
        ("36080219850906711A", "id_characters"),
        ("X60802198509067111", "id_characters"),
        (make_id("360802", date(2026, 3, 3), 1), "id_birth_future"),
        (make_id("360802", date(1899, 12, 31), 1), "id_birth_too_early"),
        (make_id("360802", date(2000, 2, 1), 1).replace("20000201", "20000230"), "id_birth_date"),
        (make_id("360802", date(2000, 2, 1), 1).replace("20000201", "20001301"), "id_birth_date"),
    ],
)
def test_bad_id_numbers(value: str, code: str) -> None:
    with pytest.raises(InvalidIdentity) as info:
        check_id_number(value, today=TODAY)
    assert info.value.code == code
    assert info.value.message.startswith("身份证号码")


def test_birth_date_bounds_are_inclusive() -> None:
    born_today = make_id("360802", TODAY, 5)
    assert check_id_number(born_today, today=TODAY) == born_today
    assert id_birth_date(born_today) == TODAY
    oldest = make_id("360802", date(1900, 1, 1), 5)
    assert check_id_number(oldest, today=TODAY) == oldest


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("13812341234", "13812341234"),
        ("199 0000 1111", "19900001111"),
        ("138-1234-1234", "13812341234"),
        ("+86 13812341234", "13812341234"),
        ("008613812341234", "13812341234"),
        ("１３８１２３４１２３４", "13812341234"),
    ],
)
def test_good_phones(raw: str, normalised: str) -> None:
    assert check_phone(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("1381234123", "phone_format"),
        ("138123412345", "phone_format"),
        ("23812341234", "phone_format"),
        ("1381234123a", "phone_format"),
        ("", "phone_format"),
        ("12812341234", "phone_prefix"),
        ("10012341234", "phone_prefix"),
    ],
)
def test_bad_phones(raw: str, code: str) -> None:
    with pytest.raises(InvalidIdentity) as info:
        check_phone(raw)
    assert info.value.code == code
    if code == "phone_format":
        assert str(info.value) == "手机号码应为11位数字，以1开头"


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_every_well_formed_mobile_passes(phone: str) -> None:
    assert check_phone(phone) == phone


def test_masks() -> None:
    id_number = make_id("360802", date(1962, 3, 28), 715)
    assert mask_id(id_number) == "360802********" + id_number[-4:]
    assert mask_phone("13812341234") == "138****1234"
    assert mask_name("向桂") == "向*"
    assert mask_name("田红德") == "田**"
    assert mask_name(" 王 ") == "王*"
    assert mask_name("") == ""


@given(IDS)
def test_a_masked_id_hides_the_birth_date(id_number: str) -> None:
    masked = mask_id(id_number)
    assert len(masked) == 18
    assert masked[6:14] == "*" * 8


@pytest.mark.parametrize("short", ["1234", "1234567890", "138123"])
def test_values_too_short_to_mask_partly_are_hidden_entirely(short: str) -> None:
    assert set(mask_id(short)) == {"*"}
    if len(short) <= 7:
        assert set(mask_phone(short)) == {"*"}
