"""`pack` takes a fast path when its input is canonical already (or only needs keys sorted and tuples made
lists); these check that the fast path and the long way always give the same bytes or the same refusal."""

from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codec import _canonical, pack, pack_map
from protocol.errors import LocalProtocolError

ANY_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.binary(max_size=6)
    | st.just("\ud800")
    | st.just(bytearray(b"x"))
)


def _values(levels: int) -> st.SearchStrategy[object]:
    strategy: st.SearchStrategy[object] = ANY_SCALAR
    for _ in range(levels):
        strategy = (
            ANY_SCALAR
            | st.lists(strategy, max_size=4)
            | st.tuples(strategy, strategy)
            | st.dictionaries(st.text(max_size=4), strategy, max_size=4)
            | st.dictionaries(st.integers(0, 3), strategy, max_size=2)
        )
    return strategy


def _long_way(value: object) -> bytes:
    normal = _canonical(value, 0)
    try:
        return msgpack.packb(normal, use_bin_type=True, use_single_float=False, strict_types=True, datetime=False)
    except (ValueError, TypeError, OverflowError) as exc:
        raise LocalProtocolError(str(exc)) from exc


@settings(max_examples=1500, deadline=None)
@given(_values(4))
def test_fast_path_gives_the_long_ways_bytes_or_refusal(value: object) -> None:
    try:
        expected = _long_way(value)
    except LocalProtocolError:
        with pytest.raises(LocalProtocolError):
            pack(value)
        return
    assert pack(value) == expected


def test_deep_and_odd_values_still_refused() -> None:
    deep: object = 1
    for _ in range(17):
        deep = {"k": deep}
    for value in (deep, {"a": [1.0, math.nan]}, {"b": {"c": (1, math.inf)}}, [{"x": bytearray(b"1")}]):
        with pytest.raises(LocalProtocolError):
            pack(value)


CELL = st.tuples(
    st.integers(-(2**64), 2**64),
    st.text(max_size=4) | st.integers(0, 3),
    _values(2),
    st.integers(-(2**64), 2**64) | st.booleans() | _values(1),
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.text(max_size=4) | st.integers(0, 2), _values(3), max_size=6))
def test_pack_map_gives_packs_bytes_or_refusal(value: dict[str, object]) -> None:
    try:
        expected = pack(value)
    except LocalProtocolError:
        with pytest.raises(LocalProtocolError):
            pack_map(value)
        return
    assert pack_map(value) == expected


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.text(max_size=4), CELL.map(list) | CELL | _values(1), max_size=6))
def test_pack_map_of_cells_gives_packs_bytes_or_refusal(value: dict[str, object]) -> None:
    try:
        expected = pack(value)
    except LocalProtocolError:
        with pytest.raises(LocalProtocolError):
            pack_map(value, cells=True)
        return
    assert pack_map(value, cells=True) == expected
