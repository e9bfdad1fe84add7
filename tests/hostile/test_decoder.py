"""The decoders that read bytes from outside: `protocol.codec.unpack`, `verify_batch`, `open_batch_changes`.

Whatever arrives (random bytes, msgpack with lengths that lie, nesting thousands deep, extension types,
non-string keys, NaN, truncated or bit-flipped batches, zlib bombs, bodies that are not what their
signed header says) comes out as a value within the limits or as a typed `RemoteProtocolError`
(`MalformedError`, `TooLargeError`, `SignatureError`, ...), never as another exception, and memory
stays bounded while it is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import struct
import tracemalloc
import zlib
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.batch import ZERO_HASH, build_batch, open_batch_changes, verify_batch
from protocol.codec import DEFAULT_LIMITS, HEADER_LIMITS, Limits, pack, unpack
from protocol.errors import (
    DecryptError,
    DigestError,
    MalformedError,
    RemoteProtocolError,
    SignatureError,
    TooLargeError,
    UnknownKeyError,
    ValidationError,
    WrongRecipientError,
)
from protocol.frame import MAGIC, peek_header
from protocol.keys import key_id, public_bytes, sealing_key_from_seed, signing_key_from_seed

from .harness import TALLY, hostile

HUB = "360802"
STATION = "360802-T01-01"
STATION_KEY = signing_key_from_seed(bytes(range(32)))
STRANGER_KEY = signing_key_from_seed(bytes(range(1, 33)))
HUB_SEAL = sealing_key_from_seed(bytes(range(64, 96)))
HUB_SEAL_ID = key_id(public_bytes(HUB_SEAL))
OTHER_SEAL = sealing_key_from_seed(bytes(range(96, 128)))

SMALL = Limits(max_bytes=4096, max_str=64, max_bin=64, max_array=16, max_map=8, max_depth=4)
LIMIT_SETS = (DEFAULT_LIMITS, HEADER_LIMITS, SMALL)
REFUSALS = (MalformedError, TooLargeError)


def trusted(signer: str, key: str) -> object:
    return STATION_KEY.public_key() if signer == STATION else None


def unseal(kid: str) -> object:
    return HUB_SEAL if kid == HUB_SEAL_ID else None


def within(value: object, limits: Limits, depth: int = 1) -> bool:
    """Whether a decoded value respects every limit it was decoded under."""
    if isinstance(value, str):
        return len(value.encode("utf-8")) <= limits.max_str
    if isinstance(value, bytes):
        return len(value) <= limits.max_bin
    if isinstance(value, list):
        return (
            depth <= limits.max_depth
            and len(value) <= limits.max_array
            and all(within(v, limits, depth + 1) for v in value)
        )
    if isinstance(value, dict):
        return (
            depth <= limits.max_depth
            and len(value) <= limits.max_map
            and all(
                isinstance(k, str) and within(k, limits, depth) and within(v, limits, depth + 1)
                for k, v in value.items()
            )
        )
    return value is None or type(value) in (bool, int, float)


# -- raw bytes --------------------------------------------------------------------------------------------


@hostile(3000)
@given(data=st.binary(max_size=2048), limits=st.sampled_from(LIMIT_SETS))
def test_random_bytes_decode_within_limits_or_are_refused(data: bytes, limits: Limits) -> None:
    TALLY.add("decoder: random bytes -> unpack, peek_header, verify_batch")
    try:
        value = unpack(data, limits)
    except REFUSALS:
        pass
    else:
        assert within(value, limits), f"unpack returned a value outside {limits}"
    for candidate in (data, MAGIC + data):
        with pytest.raises(RemoteProtocolError):
            verify_batch(candidate, recipient=HUB, verify_key=trusted)  # type: ignore[arg-type]
        with contextlib.suppress(RemoteProtocolError):
            peek_header(candidate)


# -- msgpack that lies -----------------------------------------------------------------------------------

_LEN_HEADERS = {  # marker, struct format of the length
    "str8": (0xD9, ">B"),
    "str16": (0xDA, ">H"),
    "str32": (0xDB, ">I"),
    "bin8": (0xC4, ">B"),
    "bin16": (0xC5, ">H"),
    "bin32": (0xC6, ">I"),
    "array16": (0xDC, ">H"),
    "array32": (0xDD, ">I"),
    "map16": (0xDE, ">H"),
    "map32": (0xDF, ">I"),
    "ext8": (0xC7, ">B"),
    "ext16": (0xC8, ">H"),
    "ext32": (0xC9, ">I"),
}
_MAX_FOR = {">B": 2**8 - 1, ">H": 2**16 - 1, ">I": 2**32 - 1}


@st.composite
def lying_length(draw: st.DrawFn) -> bytes:
    """A length header that claims more (often vastly more) than follows."""
    name = draw(st.sampled_from(sorted(_LEN_HEADERS)))
    marker, fmt = _LEN_HEADERS[name]
    payload = draw(st.binary(max_size=64))
    claimed = draw(st.integers(min_value=len(payload) + 1, max_value=_MAX_FOR[fmt]))
    ext_type = struct.pack(">b", draw(st.integers(-128, 127))) if name.startswith("ext") else b""
    return bytes([marker]) + struct.pack(fmt, claimed) + ext_type + payload


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=17, max_value=100_000))
    opener = draw(st.sampled_from([b"\x91", b"\xdc\x00\x01", b"\x81\xa1k", b"\xdd\x00\x00\x00\x01"]))
    return opener * depth + b"\xc0"


@st.composite
def ext_value(draw: st.DrawFn) -> bytes:
    code = struct.pack(">b", draw(st.integers(-128, 127)))
    kind = draw(st.sampled_from(["fixext1", "fixext2", "fixext4", "fixext8", "fixext16", "ext8", "timestamp"]))
    if kind == "timestamp":
        return b"\xd6\xff" + struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
    if kind == "ext8":
        data = draw(st.binary(max_size=255))
        return b"\xc7" + bytes([len(data)]) + code + data
    size = {"fixext1": 1, "fixext2": 2, "fixext4": 4, "fixext8": 8, "fixext16": 16}[kind]
    marker = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}[size]
    return bytes([marker]) + code + draw(st.binary(min_size=size, max_size=size))


@st.composite
def bad_map_key(draw: st.DrawFn) -> bytes:
    key = draw(
        st.sampled_from(
            [
                b"\x01",
                b"\xc0",
                b"\xc3",
                b"\xc4\x01k",
                b"\x91\x01",
                b"\xcb" + struct.pack(">d", 1.5),
                b"\x80",
                b"\xd4\x01\x00",
            ]
        )
    )
    return b"\x81" + key + b"\xa1v"


@st.composite
def non_finite(draw: st.DrawFn) -> bytes:
    value = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    return draw(st.sampled_from([b"\xcb" + struct.pack(">d", value), b"\xca" + struct.pack(">f", value)]))


@st.composite
def wrapped(draw: st.DrawFn, inner: st.SearchStrategy[bytes]) -> bytes:
    """A hostile value on its own, inside an array or a map, or followed by trailing bytes."""
    value = draw(inner)
    how = draw(st.sampled_from(["bare", "array", "map", "trailing"]))
    if how == "array":
        return b"\x92\xc0" + value
    if how == "map":
        return b"\x81\xa1k" + value
    if how == "trailing":
        return pack(draw(st.integers(-(2**63), 2**64 - 1))) + value
    return value


MUST_REFUSE = st.one_of(
    wrapped(lying_length()),
    wrapped(deep_nesting()),
    wrapped(ext_value()),
    wrapped(bad_map_key()),
    wrapped(non_finite()),
    wrapped(st.just(b"\xc1")),
)


@hostile(2500)
@given(data=MUST_REFUSE, limits=st.sampled_from(LIMIT_SETS))
def test_lying_lengths_deep_nesting_ext_types_bad_keys_are_refused(data: bytes, limits: Limits) -> None:
    TALLY.add("decoder: huge length headers, deep nesting, ext types, non-str keys, NaN, trailing bytes")
    with pytest.raises(REFUSALS):
        unpack(data, limits)
    with pytest.raises(RemoteProtocolError):
        verify_batch(MAGIC + data, recipient=HUB, verify_key=trusted)  # type: ignore[arg-type]


# -- valid batches, then damaged --------------------------------------------------------------------------

_TEXT = st.text(max_size=40)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    _TEXT,
    st.binary(max_size=40),
    st.floats(allow_nan=False, allow_infinity=False),
)


@cache
def valid_batches() -> tuple[tuple[bytes, int, bool], ...]:
    """A fixed pool of genuine batches of varied shape (sealed or not, 1-40 changes, odd values), made once:
    the hostile part of these tests is the damage done to them, not their content."""
    rng = random.Random(11643)
    values: list[object] = [
        None,
        True,
        0,
        -1,
        2**64 - 1,
        -(2**63),
        1.5,
        "",
        "申请人",
        "'; DROP TABLE x; --",
        b"\x00" * 40,
        [1, [2, [3]]],
        {"a": {"b": {"c": None}}},
        "x" * 3000,
    ]
    pool = []
    for i in range(24):
        n = rng.choice([1, 2, 3, 5, 40])
        first = rng.randrange(1, 10_000)
        changes: list[object] = [
            [
                STATION,
                1,
                first + k,
                rng.randrange(2**62),
                rng.choice(["application", "event", "x"]),
                f"r-{i}-{k}",
                {f"f{j}": rng.choice(values) for j in range(rng.randrange(1, 6))},
                {},
            ]
            for k in range(n)
        ]
        sealed = i % 2 == 0
        frame = build_batch(
            origin=STATION,
            epoch=1,
            first_seq=first,
            changes=changes,
            prev=rng.randbytes(32),
            recipient=HUB,
            hlc=rng.randrange(2**62),
            signing_key=STATION_KEY,
            seal_to=HUB_SEAL.public_key() if sealed else None,
        )
        pool.append((frame, n, sealed))
    return tuple(pool)


@st.composite
def valid_batch(draw: st.DrawFn) -> tuple[bytes, int, bool]:
    return valid_batches()[draw(st.integers(0, len(valid_batches()) - 1))]


@st.composite
def damaged(draw: st.DrawFn, frame: bytes) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "append", "delete"]))
    if how == "truncate":
        return frame[: draw(st.integers(0, len(frame) - 1))]
    if how == "append":
        return frame + draw(st.binary(min_size=1, max_size=64))
    at = draw(st.integers(0, len(frame) - 1))
    if how == "flip":
        bit = draw(st.integers(0, 7))
        return frame[:at] + bytes([frame[at] ^ (1 << bit)]) + frame[at + 1 :]
    if how == "overwrite":
        junk = draw(st.binary(min_size=1, max_size=16))
        out = frame[:at] + junk + frame[at + len(junk) :]
        return out if out != frame else out + b"\x00"
    if how == "insert":
        return frame[:at] + draw(st.binary(min_size=1, max_size=16)) + frame[at:]
    return frame[:at] + frame[at + draw(st.integers(1, 16)) :]


@hostile(1500)
@given(data=st.data())
def test_truncated_and_bit_flipped_batches_are_refused(data: st.DataObject) -> None:
    TALLY.add("decoder: truncated / bit-flipped / spliced signed batches")
    frame, count, _sealed = data.draw(valid_batch())
    vb = verify_batch(frame, recipient=HUB, verify_key=trusted)  # type: ignore[arg-type]
    assert len(open_batch_changes(vb, unseal_key=unseal)) == count  # type: ignore[arg-type]
    bad = data.draw(damaged(frame))
    assert bad != frame
    with pytest.raises(RemoteProtocolError):
        vb = verify_batch(bad, recipient=HUB, verify_key=trusted)  # type: ignore[arg-type]
        open_batch_changes(vb, unseal_key=unseal)  # type: ignore[arg-type]


@hostile(300)
@given(frame=valid_batch(), who=st.sampled_from(["stranger", "nobody", "other hub", "other seal key"]))
def test_authentic_looking_batches_from_the_wrong_party_are_refused(frame: tuple[bytes, int, bool], who: str) -> None:
    TALLY.add("decoder: unknown signer, wrong recipient, wrong sealing key")
    data, _, sealed = frame
    expected: tuple[type[RemoteProtocolError], ...]
    if who == "stranger":
        expected, verify = (SignatureError,), (lambda s, k: STRANGER_KEY.public_key())
        recipient = HUB
    elif who == "nobody":
        expected, verify, recipient = (UnknownKeyError,), (lambda s, k: None), HUB
    elif who == "other hub":
        expected, verify, recipient = (WrongRecipientError,), trusted, "360803"
    else:
        vb = verify_batch(data, recipient=HUB, verify_key=trusted)  # type: ignore[arg-type]
        if not sealed:
            return
        with pytest.raises((UnknownKeyError, DecryptError)):
            open_batch_changes(vb, unseal_key=lambda kid: OTHER_SEAL)
        return
    with pytest.raises(expected):
        verify_batch(data, recipient=recipient, verify_key=verify)  # type: ignore[arg-type]


# -- authentic frames around hostile bodies ---------------------------------------------------------------


@cache
def bomb(size: int) -> bytes:
    return zlib.compress(b"\x00" * size, 9)


@cache
def msgpack_bomb() -> bytes:
    # An array that claims 4 billion elements followed by a few: the length must be refused up front.
    return zlib.compress(b"\xdd\xff\xff\xff\xff" + b"\xc0" * 1024)


def _header(count: int, sealed: bool) -> dict[str, object]:
    return {
        "v": 1, "kind": "batch", "codec": "zlib", "sealed": sealed, "body_sha256": bytes(32), "signer": STATION,
        "signer_key": key_id(public_bytes(STATION_KEY)), "recipient": HUB,
        "recipient_key": HUB_SEAL_ID if sealed else "",
        "origin": STATION, "epoch": 1, "first_seq": 1, "last_seq": count, "count": count, "prev": ZERO_HASH, "hlc": 1,
    }  # fmt: skip


def forge(header: dict[str, object], body: bytes) -> bytes:
    from protocol import frame as frame_mod

    header = {**header, "body_sha256": hashlib.sha256(body).digest()}
    hb = pack(header)
    return frame_mod._encode_frame(hb, body, frame_mod._sign_header(hb, STATION_KEY))


def seal(body: bytes) -> bytes:
    from protocol import frame as frame_mod

    return frame_mod._hpke_seal(body, HUB_SEAL.public_key(), frame_mod.seal_info(HUB, HUB_SEAL_ID))


@st.composite
def hostile_body(draw: st.DrawFn) -> tuple[bytes, int, str]:
    """(plain body before sealing, header count, what is wrong with it)."""
    kind = draw(
        st.sampled_from(
            [
                "random",
                "zlib-random",
                "not-a-list",
                "wrong-count",
                "bomb",
                "msgpack-bomb",
                "zlib-trailing",
                "zlib-truncated",
                "ext-inside",
                "too-deep",
            ]
        )
    )
    count = draw(st.integers(1, 5))
    if kind == "random":
        return draw(st.binary(max_size=256)), count, kind
    if kind == "zlib-random":
        return zlib.compress(draw(st.binary(min_size=1, max_size=256))), count, kind
    if kind == "not-a-list":
        return zlib.compress(pack(draw(st.one_of(st.dictionaries(_TEXT, _SCALAR, max_size=3), _SCALAR)))), count, kind
    if kind == "wrong-count":
        n = draw(st.integers(0, 8).filter(lambda k: k != count))
        return zlib.compress(pack([[STATION, 1, i + 1, 1, "application", "a", {}, {}] for i in range(n)])), count, kind
    if kind == "bomb":
        size = draw(st.sampled_from([DEFAULT_LIMITS.max_bytes + 1, 24 * 2**20, 64 * 2**20]))
        return b"", count, f"bomb:{size}"
    if kind == "msgpack-bomb":
        return b"", count, kind
    if kind == "zlib-trailing":
        return zlib.compress(pack([None] * count)) + draw(st.binary(min_size=1, max_size=32)), count, kind
    if kind == "zlib-truncated":
        whole = zlib.compress(pack([None] * count))
        return whole[: draw(st.integers(0, len(whole) - 1))], count, kind
    if kind == "ext-inside":
        return zlib.compress(b"\x91" + draw(ext_value())), 1, kind
    return zlib.compress(draw(deep_nesting())), count, kind


@hostile(300)
@given(body=hostile_body(), sealed=st.booleans(), garbage_seal=st.booleans())
def test_signed_frames_with_hostile_bodies_are_refused_within_bounded_memory(
    body: tuple[bytes, int, str], sealed: bool, garbage_seal: bool
) -> None:
    TALLY.add("decoder: signed frames around bombs, non-lists, wrong counts, bad zlib, bad ciphertext")
    plain, count, kind = body
    if kind.startswith("bomb:"):  # built here, not drawn, so a failure report does not print megabytes
        plain = bomb(int(kind.split(":")[1]))
    elif kind == "msgpack-bomb":
        plain = msgpack_bomb()
    sent = (seal(plain) if not garbage_seal else hashlib.sha512(plain).digest() * 3) if sealed else plain
    frame = forge(_header(count, sealed), sent)
    vb = verify_batch(frame, recipient=HUB, verify_key=trusted)  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        with pytest.raises((MalformedError, TooLargeError, ValidationError, DecryptError)):
            open_batch_changes(vb, unseal_key=unseal)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The body may inflate to the 16 MiB limit (plus one byte) before it is refused, and no further; zlib's
    # output buffer may briefly exist twice while it is resized.
    assert peak < 3 * DEFAULT_LIMITS.max_bytes, f"{kind}: refusing it took {peak / 2**20:.1f} MiB"


def test_body_digest_and_signature_protect_every_byte() -> None:
    """The two checks that make damage detectable, each on its own."""
    TALLY.add("decoder: digest and signature checks", 2)
    body = zlib.compress(pack([None]))
    frame = forge(_header(1, False), body)
    at = frame.rindex(body) + len(body) - 1  # the last byte of the body: covered by the digest only
    with pytest.raises(DigestError):
        verify_batch(frame[:at] + bytes([frame[at] ^ 1]) + frame[at + 1 :], recipient=HUB, verify_key=trusted)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify_batch(frame[:-64] + bytes(64), recipient=HUB, verify_key=trusted)  # type: ignore[arg-type]
