from __future__ import annotations

import hashlib
import zlib

import pytest

from protocol import frame as frame_mod
from protocol.codec import HEADER_LIMITS, Limits, pack
from protocol.errors import (
    DecryptError,
    DigestError,
    LocalProtocolError,
    MalformedError,
    SignatureError,
    TooLargeError,
    UnknownKeyError,
    UnsupportedError,
    WrongRecipientError,
)
from protocol.frame import (
    MAGIC,
    VerifiedFrame,
    open_payload,
    peek_header,
    seal_frame,
    seal_info,
    verify_frame,
)
from protocol.keys import key_id, public_bytes

from .helpers import (
    HUB,
    HUB_SEAL_KEY,
    HUB_SEAL_KID,
    OTHER_HUB,
    OTHER_SEAL_KEY,
    STATION,
    STATION_KEY,
    STATION_KID,
    STRANGER_KEY,
    batch_header,
    forge,
    hub_unseal,
    nobody,
    noncanonical_pack,
    trusted,
)


def _header(**extra: object) -> dict[str, object]:
    return {"kind": "note", "signer": STATION, "recipient": HUB, "recipient_key": "", **extra}


def test_round_trip_unsealed_and_sealed() -> None:
    plain = seal_frame(_header(), {"hello": [1, 2]}, signing_key=STATION_KEY)
    vf = verify_frame(plain, recipient=HUB, verify_key=trusted)
    assert vf.header["signer_key"] == STATION_KID and vf.header["sealed"] is False
    assert vf.header_hash == hashlib.sha256(vf.header_bytes).digest()
    assert open_payload(vf) == {"hello": [1, 2]}

    sealed = seal_frame(_header(), {"hello": [1, 2]}, signing_key=STATION_KEY, seal_to=HUB_SEAL_KEY.public_key())
    vs = verify_frame(sealed, recipient=HUB, verify_key=trusted)
    assert vs.sealed and vs.header["recipient_key"] == HUB_SEAL_KID
    assert open_payload(vs, unseal_key=hub_unseal) == {"hello": [1, 2]}


def test_signing_is_deterministic_for_unsealed_frames() -> None:
    a = seal_frame(_header(), [1], signing_key=STATION_KEY)
    assert a == seal_frame(_header(), [1], signing_key=STATION_KEY)
    assert a.startswith(MAGIC)


def test_unknown_signer_key() -> None:
    data = seal_frame(_header(), [1], signing_key=STATION_KEY)
    with pytest.raises(UnknownKeyError):
        verify_frame(data, recipient=HUB, verify_key=nobody)
    stranger = seal_frame(_header(), [1], signing_key=STRANGER_KEY)
    with pytest.raises(UnknownKeyError):
        verify_frame(stranger, recipient=HUB, verify_key=trusted)


def test_key_lookup_may_refuse_by_itself() -> None:
    def revoked(signer: str, signer_key: str) -> None:
        raise UnknownKeyError(f"{signer} is revoked", code="revoked")

    data = seal_frame(_header(), [1], signing_key=STATION_KEY)
    with pytest.raises(UnknownKeyError) as info:
        verify_frame(data, recipient=HUB, verify_key=revoked)
    assert info.value.code == "revoked"


def test_signature_by_another_key_under_a_trusted_name() -> None:
    # A stranger claims to be the station and names the station's key id.
    data = forge(batch_header(), zlib.compress(pack([1, 2, 3])), key=STRANGER_KEY)
    with pytest.raises(SignatureError):
        verify_frame(data, recipient=HUB, verify_key=trusted)


def test_bad_signature_is_reported_before_the_body_is_looked_at() -> None:
    garbage = b"\xc1\xc1 this is neither zlib nor msgpack"
    data = forge(batch_header(), garbage, signature=bytes(64))
    with pytest.raises(SignatureError):
        verify_frame(data, recipient=HUB, verify_key=trusted)
    # The same garbage, properly signed, authenticates; only opening it fails.
    good = forge(batch_header(), garbage)
    vf = verify_frame(good, recipient=HUB, verify_key=trusted)
    assert vf.body == garbage
    with pytest.raises(MalformedError):
        open_payload(vf)


def test_valid_signature_over_a_different_body_digest() -> None:
    header = batch_header(body_sha256=hashlib.sha256(b"the body that was signed").digest())
    data = forge(header, zlib.compress(pack([1, 2, 3])), digest=False)
    with pytest.raises(DigestError):
        verify_frame(data, recipient=HUB, verify_key=trusted)


def test_wrong_recipient() -> None:
    data = seal_frame(_header(), [1], signing_key=STATION_KEY)
    with pytest.raises(WrongRecipientError):
        verify_frame(data, recipient=OTHER_HUB, verify_key=trusted)


def test_broadcast_frames_need_opting_in() -> None:
    data = seal_frame(_header(recipient="*"), [1], signing_key=STATION_KEY)
    with pytest.raises(WrongRecipientError):
        verify_frame(data, recipient=HUB, verify_key=trusted)
    assert verify_frame(data, recipient=HUB, verify_key=trusted, allow_broadcast=True).body


def test_sealed_frame_needs_the_right_private_key() -> None:
    data = seal_frame(_header(), [1], signing_key=STATION_KEY, seal_to=HUB_SEAL_KEY.public_key())
    vf = verify_frame(data, recipient=HUB, verify_key=trusted)
    with pytest.raises(DecryptError):
        open_payload(vf, unseal_key=lambda kid: OTHER_SEAL_KEY)
    with pytest.raises(UnknownKeyError):
        open_payload(vf, unseal_key=lambda kid: None)
    with pytest.raises(UnknownKeyError):
        open_payload(vf)


def test_hpke_info_binds_recipient_and_key_id() -> None:
    public = HUB_SEAL_KEY.public_key()
    sealed = frame_mod._hpke_seal(b"payload", public, seal_info(HUB, HUB_SEAL_KID))
    assert frame_mod._hpke_open(sealed, HUB_SEAL_KEY, seal_info(HUB, HUB_SEAL_KID)) == b"payload"
    with pytest.raises(DecryptError):
        frame_mod._hpke_open(sealed, HUB_SEAL_KEY, seal_info(OTHER_HUB, HUB_SEAL_KID))
    with pytest.raises(DecryptError):
        frame_mod._hpke_open(sealed, HUB_SEAL_KEY, seal_info(HUB, "0000000000000000"))
    assert seal_info(HUB, HUB_SEAL_KID) == b"sanji/1|" + HUB.encode() + b"|" + HUB_SEAL_KID.encode()


def test_sealed_body_addressed_to_one_hub_does_not_open_under_another_name() -> None:
    # A signer that seals for hub A but writes hub B in the header produces a frame hub B cannot open.
    body = frame_mod._hpke_seal(zlib.compress(pack([1, 2, 3])), HUB_SEAL_KEY.public_key(), seal_info(HUB, HUB_SEAL_KID))
    data = forge(batch_header(recipient=OTHER_HUB, sealed=True, recipient_key=HUB_SEAL_KID), body)
    vf = verify_frame(data, recipient=OTHER_HUB, verify_key=trusted)
    with pytest.raises(DecryptError):
        open_payload(vf, unseal_key=hub_unseal)


def test_zlib_bomb_is_too_large() -> None:
    bomb = zlib.compress(bytes(50_000_000), 9)
    assert len(bomb) < 100_000
    vf = verify_frame(forge(batch_header(), bomb), recipient=HUB, verify_key=trusted)
    with pytest.raises(TooLargeError):
        open_payload(vf)


def test_inflate_limits_and_shape() -> None:
    small = Limits(max_bytes=100, max_str=100, max_bin=100, max_array=100, max_map=100, max_depth=4)
    fits = zlib.compress(pack(b"x" * 80))
    vf = verify_frame(forge(batch_header(), fits), recipient=HUB, verify_key=trusted)
    assert open_payload(vf, limits=small) == b"x" * 80
    for body, error in [
        (zlib.compress(pack(b"x" * 120)), TooLargeError),
        (zlib.compress(pack([1]))[:-3], MalformedError),
        (zlib.compress(pack([1])) + b"tail", MalformedError),
        (b"not zlib at all", MalformedError),
        (zlib.compress(b"\xc1"), MalformedError),
    ]:
        vf = verify_frame(forge(batch_header(), body), recipient=HUB, verify_key=trusted)
        with pytest.raises(error):
            open_payload(vf, limits=small)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"v": 2}, UnsupportedError),
        ({"v": True}, MalformedError),
        ({"codec": "zstd"}, UnsupportedError),
        ({"signer_key": "not-a-key-id!!"}, MalformedError),
        ({"sealed": 1}, MalformedError),
        ({"sealed": True}, MalformedError),  # sealed but no recipient key
        ({"recipient_key": HUB_SEAL_KID}, MalformedError),  # recipient key but not sealed
        ({"kind": ""}, MalformedError),
        ({"recipient": 5}, MalformedError),
        ({"signer": None}, MalformedError),
        ({"extra": [[[[1]]]]}, TooLargeError),
    ],
    ids=repr,
)
def test_header_shape_is_checked_before_the_signature(overrides: dict[str, object], error: type[Exception]) -> None:
    data = forge(batch_header(**overrides), b"body")
    with pytest.raises(error):
        verify_frame(data, recipient=HUB, verify_key=trusted)


def test_missing_header_field() -> None:
    header = batch_header()
    del header["body_sha256"]
    data = forge(header, b"body", digest=False)
    with pytest.raises(MalformedError):
        verify_frame(data, recipient=HUB, verify_key=trusted)


def test_noncanonical_header_is_refused_even_when_signed() -> None:
    header = batch_header(body_sha256=hashlib.sha256(b"body").digest())
    reordered = dict(reversed(list(header.items())))
    data = forge(header, b"body", digest=False, header_bytes=noncanonical_pack(reordered))
    with pytest.raises(MalformedError):
        verify_frame(data, recipient=HUB, verify_key=trusted)


def test_outer_frame_shape() -> None:
    good = seal_frame(_header(), [1], signing_key=STATION_KEY)
    hb, body, sig = frame_mod._split(good, 1 << 20)
    cases: list[tuple[bytes, type[Exception]]] = [
        (b"SJF2" + good[4:], MalformedError),
        (b"SJ", MalformedError),
        (MAGIC + pack([hb, body]), MalformedError),
        (MAGIC + pack([hb, body, sig, b""]), MalformedError),
        (MAGIC + pack([hb, body, sig[:63]]), MalformedError),
        (MAGIC + pack([hb, "body", sig]), MalformedError),
        (MAGIC + pack({"h": hb}), MalformedError),
        (MAGIC + pack([hb, body, sig]) + b"\x00", MalformedError),
        (MAGIC + b"\x93\xc5\x00" + bytes([len(hb)]) + hb + pack(body) + pack(sig), MalformedError),
        (MAGIC + pack([bytes(HEADER_LIMITS.max_bytes + 1), body, sig]), TooLargeError),
    ]
    for data, error in cases:
        with pytest.raises(error):
            verify_frame(data, recipient=HUB, verify_key=trusted)
    with pytest.raises(TooLargeError):
        verify_frame(good, recipient=HUB, verify_key=trusted, max_bytes=len(good) - 1)


def test_peek_header_reads_without_trusting() -> None:
    data = forge(batch_header(), b"body", signature=bytes(64))
    assert peek_header(data)["origin"] == STATION
    with pytest.raises(SignatureError):
        verify_frame(data, recipient=HUB, verify_key=trusted)
    with pytest.raises(MalformedError):
        peek_header(b"SJF1\xc1")


def test_verified_frame_fields() -> None:
    vf = verify_frame(seal_frame(_header(), [1], signing_key=STATION_KEY), recipient=HUB, verify_key=trusted)
    assert isinstance(vf, VerifiedFrame)
    assert (vf.kind, vf.signer, vf.sealed) == ("note", STATION, False)


@pytest.mark.parametrize(
    "header",
    [
        {"signer": STATION, "recipient": HUB, "recipient_key": ""},
        _header(v=1),
        _header(signer_key=STATION_KID),
        _header(recipient_key=HUB_SEAL_KID),  # names a key but is not sealed
        {"kind": "note", "signer": STATION, "recipient": HUB},
        _header(signer=""),
        _header(deep=[[[[1]]]]),
        _header(big="x" * 9000),
    ],
    ids=repr,
)
def test_seal_frame_refuses_bad_headers(header: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        seal_frame(header, [1], signing_key=STATION_KEY)


def test_seal_frame_refuses_misuse() -> None:
    hub_pub = HUB_SEAL_KEY.public_key()
    with pytest.raises(LocalProtocolError):
        seal_frame(_header(recipient_key="0123456789abcdef"), [1], signing_key=STATION_KEY, seal_to=hub_pub)
    with pytest.raises(LocalProtocolError):
        seal_frame(_header(recipient="*"), [1], signing_key=STATION_KEY, seal_to=hub_pub)
    with pytest.raises(LocalProtocolError):
        seal_frame(_header(), {1, 2}, signing_key=STATION_KEY)
    with pytest.raises(LocalProtocolError):
        seal_frame(_header(), [1], signing_key=STATION_KEY, compress_level=10)
    with pytest.raises(LocalProtocolError):
        seal_frame(_header(), [1], signing_key=HUB_SEAL_KEY)  # type: ignore[arg-type]
    explicit = seal_frame(
        _header(recipient_key=key_id(public_bytes(hub_pub))), [1], signing_key=STATION_KEY, seal_to=hub_pub
    )
    assert peek_header(explicit)["recipient_key"] == HUB_SEAL_KID
