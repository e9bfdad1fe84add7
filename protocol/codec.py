"""Canonical msgpack: one value, one encoding; and a decoder that trusts nothing.

Hashes and signatures are taken over encoded bytes, so two replicas that hold the same value must
produce the same bytes. `pack` therefore accepts only a small closed set of types and always picks the
same representation (sorted keys, smallest ints, float64). `unpack` is the mirror image for bytes from
outside: every size is bounded before anything is allocated, and every way the input can be wrong
comes out as a `MalformedError` or `TooLargeError`, never as a library exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain, compress
from typing import NoReturn

import msgpack

from protocol.errors import LocalProtocolError, MalformedError, SanjiError, TooLargeError
from protocol.limits import DEFAULT_LIMITS, HEADER_LIMITS, Limits

FORMAT_VERSION = 1

_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1

# The caps themselves (Limits, DEFAULT_LIMITS, HEADER_LIMITS) live in protocol/limits.py, shared by hub
# and stations; they stay importable from here.

# Deeper values could never be decoded with the default limits, so refusing them at pack time turns a
# remote refusal later into a local bug report now (and bounds recursion on cyclic input).
_PACK_MAX_DEPTH = DEFAULT_LIMITS.max_depth

_SCALARS: frozenset[type] = frozenset({type(None), bool, int, float, str, bytes})


def _is_finite(x: float) -> bool:
    # inf - inf and nan - nan are both nan, which is the only float unequal to 0.0 here.
    return x - x == 0.0


def _canonical(value: object, depth: int) -> object:
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is bytes:
        return value
    if kind is int:
        assert isinstance(value, int)
        if not _INT_MIN <= value <= _UINT_MAX:
            raise LocalProtocolError(f"integer {value} does not fit in msgpack's int64/uint64 range")
        return value
    if kind is float:
        assert isinstance(value, float)
        if not _is_finite(value):
            raise LocalProtocolError(f"float {value!r} has no canonical encoding; only finite floats allowed")
        return value
    if kind is list or kind is tuple:
        assert isinstance(value, list | tuple)
        if depth >= _PACK_MAX_DEPTH:
            raise LocalProtocolError(f"value is nested deeper than {_PACK_MAX_DEPTH} levels")
        return [_canonical(item, depth + 1) for item in value]
    if kind is dict:
        assert isinstance(value, dict)
        if depth >= _PACK_MAX_DEPTH:
            raise LocalProtocolError(f"value is nested deeper than {_PACK_MAX_DEPTH} levels")
        for key in value:
            if type(key) is not str:
                raise LocalProtocolError(f"map keys must be str, got {type(key).__name__} key {key!r}")
        # Code-point order equals UTF-8 byte order, so sorting the str keys sorts their encodings.
        return {key: _canonical(value[key], depth + 1) for key in sorted(value)}
    if isinstance(value, tuple):  # a NamedTuple (the fold's cells): an array, like any tuple
        return _canonical(tuple(value), depth)
    raise LocalProtocolError(f"cannot encode a {kind.__name__} value canonically")


# Leaf types msgpack encodes exactly as `_canonical` leaves them. Out-of-range ints and strs that are not
# valid UTF-8 make msgpack raise, which sends `pack` the long way to say what is wrong.
_PLAIN: frozenset[type] = frozenset({str, int, bool, bytes, type(None)})
_STR: frozenset[type] = frozenset({str})
_CHECKED: frozenset[type] = _PLAIN | {dict, list, float}
_CONTAINERS: frozenset[type] = frozenset({dict, list})


def _is_canonical(value: object) -> bool:
    """True when `value` is exactly what `_canonical` would return (lists, not tuples; dict keys str and
    sorted; finite floats; no other types; not too deep), so msgpack may encode it as it is. Looks a
    level of the tree at a time, mostly at C speed, and copies nothing."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return kind in _PLAIN or (kind is float and _is_finite(value))  # type: ignore[arg-type]
    level: list[object] = [value]
    dicts = kind is dict
    depth = 0
    while True:
        if depth >= _PACK_MAX_DEPTH:
            return False
        children = _sorted_children(level) if dicts else list(chain.from_iterable(level))  # type: ignore[arg-type]
        if children is None:
            return False
        kinds = set(map(type, children))
        if kinds <= _PLAIN:
            return True
        if not kinds <= _CHECKED:
            return False
        if float in kinds and not all(_is_finite(c) for c in children if type(c) is float):
            return False
        dicts = dict in kinds
        if not dicts and list not in kinds:
            return True
        level = list(compress(children, map(_CONTAINERS.__contains__, map(type, children))))
        depth += 1


def _sorted_children(level: list[object]) -> list[object] | None:
    """The items of a level's lists and the values of its dicts; None if a dict's keys are not str or
    not sorted."""
    parts: list[Iterable[object]] = []
    for node in level:
        if type(node) is dict:
            assert isinstance(node, dict)
            if node:
                if not set(map(type, node)) <= _STR:
                    return None
                keys = list(node)
                if keys != sorted(keys):
                    return None
            parts.append(node.values())
        else:
            assert isinstance(node, list)
            parts.append(node)
    return list(chain.from_iterable(parts))


def pack(value: object) -> bytes:
    """Encode `value` canonically.

    Accepts exactly None, bool, int (int64/uint64 range), finite float, str, bytes, list, tuple and dict
    with str keys; subclasses are refused so that an enum or a custom str cannot smuggle in a
    different representation. Raises `LocalProtocolError` for anything else.
    """
    if _is_canonical(value):
        try:
            return msgpack.packb(value, use_bin_type=True, use_single_float=False, strict_types=True, datetime=False)
        except (ValueError, TypeError, OverflowError):
            pass  # e.g. a lone surrogate in a str: the long way below says what is wrong
    normal = _canonical(value, 0)
    try:
        return msgpack.packb(normal, use_bin_type=True, use_single_float=False, strict_types=True, datetime=False)
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"a string is not encodable as UTF-8: {exc.reason}") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise LocalProtocolError(f"cannot encode value: {exc}") from exc


_FLAT: frozenset[type] = frozenset({str, int, bool, bytes, type(None)})


def _flat_value(value: object) -> object:
    """``value`` ready for msgpack as it is (sorting a small map's keys), or ``_SLOW`` when it is not
    a scalar, a list of scalars, or a map of str to scalars. Floats take the slow path, which checks
    that they are finite."""
    kind = type(value)
    if kind in _FLAT:
        return value
    if kind is list:
        assert isinstance(value, list)
        return value if set(map(type, value)) <= _FLAT else _SLOW
    if kind is dict:
        assert isinstance(value, dict)
        if set(map(type, value)) <= _STR and set(map(type, value.values())) <= _FLAT:
            return dict(sorted(value.items()))
    return _SLOW


_SLOW = object()


def pack_map(value: dict[str, object], *, cells: bool = False) -> bytes:
    """``pack(value)`` for the shapes records and changes have, several times faster: a map of str
    keys whose values are scalars, lists of scalars or maps of str to scalars (with ``cells``, each
    value is a ``[hlc, origin, value, base]`` cell and that rule applies to its third element).
    Anything else, and anything msgpack refuses, goes through :func:`pack`, so the bytes are always
    the canonical ones."""
    out: dict[str, object] = {}
    try:
        for key in sorted(value):
            if type(key) is not str:
                return pack(value)
            item = value[key]
            if cells:
                if type(item) is not list and not isinstance(item, tuple):  # a tuple, or the fold's NamedTuple
                    return pack(value)
                cell: list[object] | tuple[object, ...] = item
                if len(cell) != 4 or type(cell[0]) is not int or type(cell[1]) is not str or type(cell[3]) is not int:
                    return pack(value)
                inner = _flat_value(cell[2])
                if inner is _SLOW:
                    return pack(value)
                out[key] = [cell[0], cell[1], inner, cell[3]]
            else:
                flat = _flat_value(item)
                if flat is _SLOW:
                    return pack(value)
                out[key] = flat
        return msgpack.packb(out, use_bin_type=True, use_single_float=False, strict_types=True, datetime=False)
    except (ValueError, TypeError, OverflowError):
        return pack(value)


def _refuse_ext(code: int, data: bytes) -> NoReturn:
    raise MalformedError(f"msgpack extension type {code} is not allowed")


def _walk(value: object, max_depth: int) -> None:
    """Refuse anything msgpack decoded that `pack` could not have produced, and over-deep nesting."""
    kind = type(value)
    if kind is not list and kind is not dict:
        _check_scalar(value)
        return
    if max_depth < 1:
        raise TooLargeError("value is nested deeper than the limit of 0 levels")
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: list[object]
        if type(node) is dict:
            assert isinstance(node, dict)
            for key in node:
                if type(key) is not str:
                    raise MalformedError(f"map keys must be strings, found a {type(key).__name__} key")
            children = list(node.values())
        else:
            assert isinstance(node, list)
            children = node
        for child in children:
            ckind = type(child)
            if ckind is list or ckind is dict:
                if depth >= max_depth:
                    raise TooLargeError(f"value is nested deeper than the limit of {max_depth} levels")
                stack.append((child, depth + 1))
            elif ckind is float:
                assert isinstance(child, float)
                if not _is_finite(child):
                    raise MalformedError("a float is NaN or infinite, which has no canonical form")
            elif ckind not in _SCALARS:
                raise MalformedError(f"unexpected decoded type {ckind.__name__}")


def _check_scalar(value: object) -> None:
    kind = type(value)
    if kind not in _SCALARS:
        raise MalformedError(f"unexpected decoded type {kind.__name__}")
    if kind is float:
        assert isinstance(value, float)
        if not _is_finite(value):
            raise MalformedError("a float is NaN or infinite, which has no canonical form")


def unpack(data: bytes, limits: Limits = DEFAULT_LIMITS) -> object:
    """Decode exactly one msgpack value from `data`, refusing anything outside `limits`.

    Raises `TooLargeError` when a limit is exceeded (total size, a string, bin, array or map length,
    nesting depth) and `MalformedError` for everything else that is wrong: truncation, trailing
    bytes, invalid UTF-8, extension types (including timestamps), non-str map keys, NaN/inf.
    Duplicate map keys are not detected here (last one wins); callers that hash decoded values
    should compare against `pack` of the result, as frame headers do.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise LocalProtocolError(f"unpack needs bytes, got {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise TooLargeError(f"input is {len(data)} bytes, over the limit of {limits.max_bytes}")
    try:
        value: object = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            timestamp=0,
            ext_hook=_refuse_ext,
            max_str_len=limits.max_str,
            max_bin_len=limits.max_bin,
            max_array_len=limits.max_array,
            max_map_len=limits.max_map,
            max_ext_len=limits.max_bin,
        )
    except SanjiError:
        raise
    except MemoryError:
        raise
    except msgpack.ExtraData as exc:
        raise MalformedError("trailing bytes after the encoded value") from exc
    except msgpack.StackError as exc:
        raise TooLargeError("value is nested too deeply to decode") from exc
    except UnicodeDecodeError as exc:
        raise MalformedError("a string is not valid UTF-8") from exc
    except ValueError as exc:
        text = str(exc)
        if "exceeds max_" in text:
            raise TooLargeError(f"a length exceeds the decoding limit ({text})") from exc
        if "incomplete input" in text:
            raise MalformedError("input ends before the encoded value does (truncated)") from exc
        if "map key" in text:
            raise MalformedError("map keys must be strings") from exc
        raise MalformedError(f"not valid msgpack ({text or type(exc).__name__})") from exc
    except Exception as exc:
        # msgpack's C decoder can surface other types on hostile input; none may leak to callers.
        raise MalformedError(f"not valid msgpack ({type(exc).__name__})") from exc
    _walk(value, limits.max_depth)
    return value


__all__ = ["DEFAULT_LIMITS", "FORMAT_VERSION", "HEADER_LIMITS", "Limits", "pack", "pack_map", "unpack"]
