from __future__ import annotations

import enum
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codec import DEFAULT_LIMITS, HEADER_LIMITS, Limits, pack, unpack
from protocol.errors import LocalProtocolError, MalformedError, TooLargeError

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)


def _nested(levels: int) -> st.SearchStrategy[object]:
    strategy: st.SearchStrategy[object] = SCALARS
    for _ in range(levels):
        strategy = (
            SCALARS
            | st.lists(strategy, max_size=5)
            | st.tuples(strategy, strategy)
            | st.dictionaries(st.text(max_size=8), strategy, max_size=5)
        )
    return strategy


VALUES = _nested(5)


def _reinsert(value: object) -> object:
    """The same value with every dict rebuilt in reverse insertion order."""
    if isinstance(value, dict):
        return {k: _reinsert(value[k]) for k in reversed(list(value))}
    if isinstance(value, list | tuple):
        return [_reinsert(v) for v in value]
    return value


def _as_lists(value: object) -> object:
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_lists(v) for v in value]
    return value


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_pack_unpack_round_trip(value: object) -> None:
    encoded = pack(value)
    decoded = unpack(encoded)
    assert decoded == _as_lists(value)
    assert pack(decoded) == encoded


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_insertion_order_does_not_change_the_bytes(value: object) -> None:
    assert pack(_reinsert(value)) == pack(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.integers(-5, 5), min_size=2, max_size=8))
def test_map_keys_are_sorted_by_utf8_bytes(value: dict[str, int]) -> None:
    decoded = unpack(pack(value))
    assert isinstance(decoded, dict)
    keys = [k.encode("utf-8") for k in decoded]
    assert keys == sorted(keys)


def test_canonical_forms() -> None:
    assert pack(0) == b"\x00"
    assert pack(255) == b"\xcc\xff"
    assert pack(256) == b"\xcd\x01\x00"
    assert pack(-1) == b"\xff"
    assert pack(-33) == b"\xd0\xdf"
    assert pack(2**64 - 1) == b"\xcf" + b"\xff" * 8
    assert pack(-(2**63)) == b"\xd3\x80" + bytes(7)
    assert pack(1.0) == b"\xcb" + struct.pack(">d", 1.0)
    assert pack(0.5) == b"\xcb" + struct.pack(">d", 0.5)
    assert pack((1, "a")) == pack([1, "a"]) == b"\x92\x01\xa1a"
    assert pack(b"a") == b"\xc4\x01a"
    assert pack("a") == b"\xa1a"
    assert pack(True) == b"\xc3" and pack(None) == b"\xc0"
    assert pack({"b": 1, "a": 2, "é": 3, "Z": 4}) == pack({"Z": 4, "a": 2, "b": 1, "é": 3})
    assert list(unpack(pack({"b": 1, "é": 3, "a": 2, "Z": 4}))) == ["Z", "a", "b", "é"]  # type: ignore[call-overload]


class Colour(enum.IntEnum):
    RED = 1


class Mood(enum.StrEnum):
    CALM = "calm"


def _cyclic() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        object(),
        2**64,
        -(2**63) - 1,
        float("nan"),
        float("inf"),
        -float("inf"),
        {1: "a"},
        {b"k": 1},
        {True: 1},
        Colour.RED,
        Mood.CALM,
        bytearray(b"x"),
        "\ud800",
        {"k": "\udcff"},
        [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]],
        _cyclic(),
    ],
    ids=repr,
)
def test_pack_refuses_what_has_no_canonical_form(value: object) -> None:
    with pytest.raises(LocalProtocolError):
        pack(value)


def test_pack_accepts_the_deepest_decodable_value() -> None:
    value: object = 1
    for _ in range(DEFAULT_LIMITS.max_depth):
        value = [value]
    assert unpack(pack(value)) == value


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", MalformedError),
        (b"\xc1", MalformedError),  # never-used type byte
        (b"\x01\x02", MalformedError),  # trailing bytes
        (b"\x92\x01", MalformedError),  # truncated array
        (b"\xd4\x05\x00", MalformedError),  # fixext1
        (b"\xc7\x03\x05abc", MalformedError),  # ext8
        (b"\xd6\xff\x00\x00\x00\x01", MalformedError),  # timestamp ext
        (b"\x81\x01\x02", MalformedError),  # int key
        (b"\x81\xc4\x01a\x02", MalformedError),  # bytes key
        (b"\x91\x81\xc4\x01a\x02", MalformedError),  # bytes key one level down
        (b"\xa2\xff\xfe", MalformedError),  # invalid UTF-8
        (b"\xcb" + struct.pack(">d", float("nan")), MalformedError),
        (b"\x91\xcb" + struct.pack(">d", float("inf")), MalformedError),
        (b"\xdb\xff\xff\xff\xff", MalformedError),  # str32 claiming 4 GiB, nothing behind it
        (b"\xc6\xff\xff\xff\xff", MalformedError),  # bin32 claiming 4 GiB
        (b"\xdd\xff\xff\xff\xff", TooLargeError),  # array32 claiming 4 billion items
        (b"\xdf\xff\xff\xff\xff", TooLargeError),  # map32 claiming 4 billion pairs
        (b"\xdb\x00\x01\x00\x01" + b"a" * 65537, TooLargeError),  # str over 64 KiB
        (b"\x91" * 17 + b"\xc0", TooLargeError),  # one level deeper than allowed
        (b"\x81\xa1k" * 17 + b"\xc0", TooLargeError),
        (b"\x91" * 5000 + b"\xc0", TooLargeError),  # deeper than msgpack's own stack
    ],
    ids=lambda v: v.hex()[:24] if isinstance(v, bytes) else v.__name__,
)
def test_hostile_input_is_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        unpack(data)


def test_size_limits_apply() -> None:
    small = Limits(max_bytes=64, max_str=4, max_bin=4, max_array=4, max_map=2, max_depth=2)
    assert unpack(pack({"ab": [1, 2, b"1234"]}), small) == {"ab": [1, 2, b"1234"]}
    for value in ("abcde", b"abcde", [1, 2, 3, 4, 5], {"a": 1, "b": 2, "c": 3}, [[[1]]], "x" * 70):
        with pytest.raises(TooLargeError):
            unpack(pack(value), small)
    with pytest.raises(TooLargeError):
        unpack(bytes(HEADER_LIMITS.max_bytes + 1), HEADER_LIMITS)


def test_limits_must_be_positive() -> None:
    with pytest.raises(LocalProtocolError):
        Limits(max_bytes=0, max_str=1, max_bin=1, max_array=1, max_map=1, max_depth=1)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_are_refused_cleanly(data: bytes) -> None:
    try:
        value = unpack(data)
    except (MalformedError, TooLargeError):
        return
    assert pack(value) is not None
