from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.batch import (
    ZERO_HASH,
    BatchHeader,
    batch_filename,
    build_batch,
    open_batch_changes,
    verify_batch,
)
from protocol.codec import pack
from protocol.errors import (
    DecryptError,
    LocalProtocolError,
    MalformedError,
    RemoteProtocolError,
    UnknownKeyError,
    ValidationError,
    WrongRecipientError,
)

from .helpers import (
    CHANGES,
    HUB,
    HUB_SEAL_KEY,
    HUB_SEAL_KID,
    HUB_SIGN_KEY,
    HUB_SIGN_KID,
    OTHER_HUB,
    OTHER_SEAL_KEY,
    STATION,
    STATION_KEY,
    STATION_KID,
    batch_header,
    forge,
    hub_unseal,
    nobody,
    trusted,
)


def _build(**overrides: object) -> bytes:
    args: dict[str, object] = {
        "origin": STATION, "epoch": 1, "first_seq": 1, "changes": CHANGES, "prev": ZERO_HASH,
        "recipient": HUB, "hlc": 123, "signing_key": STATION_KEY,
    }  # fmt: skip
    args.update(overrides)
    return build_batch(**args)  # type: ignore[arg-type]


UNSEALED = _build()
SEALED = _build(seal_to=HUB_SEAL_KEY.public_key())


def _accept(data: bytes) -> list[object]:
    vb = verify_batch(data, recipient=HUB, verify_key=trusted)
    return open_batch_changes(vb, unseal_key=hub_unseal)


def test_round_trip() -> None:
    for data, sealed in ((UNSEALED, False), (SEALED, True)):
        vb = verify_batch(data, recipient=HUB, verify_key=trusted)
        assert vb.header == BatchHeader(
            origin=STATION, epoch=1, first_seq=1, last_seq=3, count=3, prev=ZERO_HASH, recipient=HUB,
            recipient_key=HUB_SEAL_KID if sealed else "", hlc=123, sealed=sealed, signer_key=STATION_KID,
        )  # fmt: skip
        assert vb.batch_hash == vb.frame.header_hash
        assert open_batch_changes(vb, unseal_key=hub_unseal) == CHANGES


def test_chain_links_by_header_hash() -> None:
    first = verify_batch(UNSEALED, recipient=HUB, verify_key=trusted)
    nxt = _build(first_seq=4, changes=[["x"]], prev=first.batch_hash)
    vb = verify_batch(nxt, recipient=HUB, verify_key=trusted)
    assert vb.header.prev == first.batch_hash
    assert (vb.header.first_seq, vb.header.last_seq, vb.header.count) == (4, 4, 1)


def test_filename() -> None:
    vb = verify_batch(UNSEALED, recipient=HUB, verify_key=trusted)
    assert batch_filename(vb.header) == "360802-T01-05_1_0000000001-0000000003.sjb"
    assert vb.header.filename == batch_filename(vb.header)


def test_refused_by_another_hub() -> None:
    with pytest.raises(WrongRecipientError):
        verify_batch(UNSEALED, recipient=OTHER_HUB, verify_key=trusted)


def test_unknown_signing_key() -> None:
    with pytest.raises(UnknownKeyError):
        verify_batch(UNSEALED, recipient=HUB, verify_key=nobody)


def test_sealed_batch_needs_the_hub_key() -> None:
    vb = verify_batch(SEALED, recipient=HUB, verify_key=trusted)
    with pytest.raises(DecryptError):
        open_batch_changes(vb, unseal_key=lambda kid: OTHER_SEAL_KEY)
    with pytest.raises(UnknownKeyError):
        open_batch_changes(vb)


@pytest.mark.parametrize(
    "overrides",
    [
        {"changes": []},
        {"changes": (1, 2)},
        {"origin": "bad_origin"},
        {"origin": "../etc"},
        {"origin": "站点"},
        {"origin": ""},
        {"epoch": 0},
        {"epoch": True},
        {"first_seq": 0},
        {"first_seq": 2**63 - 2},
        {"prev": bytes(31)},
        {"prev": "00" * 32},
        {"recipient": "*"},
        {"recipient": ""},
        {"hlc": -1},
        {"recipient_key": HUB_SEAL_KID},
        {"seal_to": HUB_SEAL_KEY.public_key(), "recipient_key": "0123456789abcdef"},
        {"signing_key": HUB_SEAL_KEY},
    ],
    ids=repr,
)
def test_build_refuses_bad_arguments(overrides: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        _build(**overrides)


def _forged(**overrides: object) -> bytes:
    return forge(batch_header(**overrides), zlib.compress(pack(CHANGES)))


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"kind": "feed"}, ValidationError),
        ({"signer": HUB}, ValidationError),  # a trusted signer, but not the origin
        ({"last_seq": 4}, ValidationError),
        ({"count": 0, "last_seq": 0}, ValidationError),
        ({"first_seq": 0, "last_seq": 2}, ValidationError),
        ({"epoch": 0}, ValidationError),
        ({"prev": bytes(16)}, ValidationError),
        ({"origin": "a_b", "signer": "a_b"}, ValidationError),
        ({"surprise": 1}, ValidationError),
        ({"epoch": "1"}, MalformedError),
        ({"prev": None}, MalformedError),
        ({"hlc": 1.5}, MalformedError),
        ({"count": True}, MalformedError),
    ],
    ids=repr,
)
def test_verify_checks_batch_fields(overrides: dict[str, object], error: type[Exception]) -> None:
    def any_station(signer: str, signer_key: str) -> object:
        return STATION_KEY.public_key()

    with pytest.raises(error):
        verify_batch(_forged(**overrides), recipient=HUB, verify_key=any_station)  # type: ignore[arg-type]


def test_hub_signed_batch_claiming_a_station_origin_is_refused() -> None:
    header = batch_header(signer=HUB, signer_key=HUB_SIGN_KID)
    data = forge(header, zlib.compress(pack(CHANGES)), key=HUB_SIGN_KEY)
    with pytest.raises(ValidationError):
        verify_batch(data, recipient=HUB, verify_key=trusted)


def test_body_must_hold_count_changes() -> None:
    short = forge(batch_header(), zlib.compress(pack(CHANGES[:2])))
    with pytest.raises(ValidationError):
        _accept(short)
    not_a_list = forge(batch_header(), zlib.compress(pack({"changes": CHANGES})))
    with pytest.raises(MalformedError):
        _accept(not_a_list)


def _assert_refused(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        _accept(data)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_flipped_byte_of_an_unsealed_batch_is_refused(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(UNSEALED) - 1))
    mask = data.draw(st.integers(1, 255))
    mutated = bytearray(UNSEALED)
    mutated[position] ^= mask
    _assert_refused(bytes(mutated))


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_flipped_byte_of_a_sealed_batch_is_refused(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(SEALED) - 1))
    mask = data.draw(st.integers(1, 255))
    mutated = bytearray(SEALED)
    mutated[position] ^= mask
    _assert_refused(bytes(mutated))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_truncation_is_refused(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from([UNSEALED, SEALED]))
    _assert_refused(source[: data.draw(st.integers(0, len(source) - 1))])


def test_every_single_byte_flip_is_refused_exhaustively() -> None:
    # Hypothesis samples; this walks every position once with one mask, for both kinds.
    for source in (UNSEALED, SEALED):
        for position in range(len(source)):
            mutated = bytearray(source)
            mutated[position] ^= 0x01
            _assert_refused(bytes(mutated))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_are_refused(data: bytes) -> None:
    _assert_refused(data)
    _assert_refused(b"SJF1" + data)
