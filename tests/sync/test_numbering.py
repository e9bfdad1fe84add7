"""Application numbers: the format, its inverse, and uniqueness across epochs."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.numbering import ApplicationNumber, application_number, parse_application_number

DAY = date(2026, 3, 2)

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SEGMENT = st.text(alphabet=_ALNUM, min_size=1, max_size=8)
STATIONS = st.one_of(
    st.sampled_from(["360802-T01-05", "360802-S06-01", "360802-T01", "HUB"]),
    st.lists(_SEGMENT, min_size=1, max_size=4).map("-".join),
)
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
EPOCHS = st.integers(min_value=1, max_value=50)
COUNTERS = st.integers(min_value=1, max_value=2_000_000)


def test_the_format() -> None:
    assert application_number("360802-T01-05", DAY, 1, 42) == "360802-T01-05-20260302-00042"
    assert application_number("360802-T01-05", DAY, 3, 42) == "360802-T01-05-20260302-E3-00042"
    assert application_number("360802-T01-05", DAY, 1, 123456) == "360802-T01-05-20260302-123456"


@given(STATIONS, DAYS, EPOCHS, COUNTERS)
def test_parse_inverts_format(station: str, day: date, epoch: int, counter: int) -> None:
    number = application_number(station, day, epoch, counter)
    parsed = parse_application_number(number)
    assert parsed == ApplicationNumber(station, day, epoch, counter)
    assert str(parsed) == number


@given(
    st.tuples(STATIONS, DAYS, EPOCHS, COUNTERS),
    st.tuples(STATIONS, DAYS, EPOCHS, COUNTERS),
)
def test_different_inputs_never_give_the_same_number(
    a: tuple[str, date, int, int], b: tuple[str, date, int, int]
) -> None:
    if a != b:
        assert application_number(*a) != application_number(*b)


def test_a_restored_station_repeats_counters_but_not_numbers() -> None:
    # Epoch 1 handed out 1..100; the backup it was restored from ended at 60, so epoch 2 counts
    # 61.. again. Every (epoch, counter) still gives its own number.
    before = {application_number("360802-T01-05", DAY, 1, c) for c in range(1, 101)}
    after = {application_number("360802-T01-05", DAY, 2, c) for c in range(61, 161)}
    assert len(before) == 100 and len(after) == 100
    assert not before & after


def test_tricky_station_codes_stay_unambiguous() -> None:
    # A station code that itself looks like a date or an epoch still parses back to itself.
    for station in ["A-20260101", "E2", "X-E2", "20260302"]:
        for epoch in (1, 2):
            number = application_number(station, DAY, epoch, 7)
            assert parse_application_number(number) == ApplicationNumber(station, DAY, epoch, 7)


@pytest.mark.parametrize(
    ("station", "epoch", "counter"),
    [
        ("360802-T01", 1, 0),
        ("360802-T01", 0, 1),
        ("360802-T01", 1, -5),
        ("", 1, 1),
        ("a b", 1, 1),
        ("T01-", 1, 1),
        ("-T01", 1, 1),
        ("T01--05", 1, 1),
        ("村站", 1, 1),
    ],
)
def test_arguments_that_would_break_uniqueness_are_refused(station: str, epoch: int, counter: int) -> None:
    with pytest.raises(ValueError):
        application_number(station, DAY, epoch, counter)


@pytest.mark.parametrize(
    "text",
    [
        "360802-T01-05-20260302-E1-00042",  # epoch 1 is written without E
        "360802-T01-05-20260302-000042",  # extra leading zero
        "360802-T01-05-20260302-0042",  # too short
        "360802-T01-05-20260302-00000",  # counter 0
        "360802-T01-05-20260230-00042",  # no such day
        "360802-T01-05-2026032-00042",
        "360802-T01-05-20260302-E0-00042",
        "360802-T01-05-20260302-E02-00042",
        "20260302-00042",
        "",
        " 360802-T01-05-20260302-00042",
    ],
)
def test_non_canonical_or_broken_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_application_number(text)
