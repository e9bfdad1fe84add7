"""Fixed inputs, fixed bytes: any change to the wire format has to show up here on purpose.

Regenerate (only after a deliberate format change) with:
    .venv/bin/python -m tests.protocol.test_vectors > tests/protocol/vectors.json

`sealed_feed` is the one vector whose bytes change at each regeneration: HPKE draws a fresh ephemeral
key inside `cryptography` (no way to inject one), so its test checks that the stored frame verifies and
opens with the stored recipient seed to the stored body, not that it is reproduced byte for byte.

`documents` holds one frame of every document kind (tests/protocol/document_vectors.py), and
`canonical_pack` its input value as well as its bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from protocol.batch import ZERO_HASH, build_batch, open_batch_changes, verify_batch
from protocol.codec import pack, unpack
from protocol.document import open_document, sign_document
from protocol.errors import UnknownKeyError
from protocol.frame import seal_info, verify_frame
from protocol.keys import key_id, public_bytes, sealing_key_from_seed, signing_key_from_seed
from protocol.messages import BODIES
from protocol.wire import Message
from tests.protocol.document_vectors import document_frames, document_vectors, from_json, to_json

VECTOR_FILE = Path(__file__).parent / "vectors.json"

SIGN_SEED = bytes(range(32))
SEAL_SEED = bytes(range(32, 64))
ORIGIN = "360802-T01-05"
RECIPIENT = "hub-360802"

# Plain JSON-able values, so the vector file can hold the changes themselves.
VECTOR_CHANGES: list[object] = [
    [ORIGIN, 1, 1, 1_772_000_000_000 << 16, "application", "a-0001",
     {"status": "accepted", "applicant_name": "向桂", "item": "360802-0004"}, {}],
    [ORIGIN, 1, 2, (1_772_000_000_000 << 16) + 1, "application", "a-0001",
     {"m.居民身份证": "submitted", "m.户口簿": "deferred"}, {"status": 1_772_000_000_000 << 16}],
    [ORIGIN, 1, 3, (1_772_000_000_001 << 16), "event", "e-0001",
     {"kind": "note", "text": "容缺受理", "score": 4.5, "flag": True, "none": None}, {}],
]  # fmt: skip

CANONICAL_VALUE: object = {
    "z": [1, -1, 255, -33, 65536, 2**64 - 1, -(2**63)],
    "a": {"é": 0.1, "Z": b"\x00\xff", "b": (True, False, None)},
    "m": "三级政务服务网",
    "": [[], {}],
}


HUB_SIGN_SEED = bytes(range(64, 96))
HUB_ID = RECIPIENT
STATION_SEAL_SEED = SEAL_SEED  # the recipient of the sealed vector is the station whose seal seed is in "keys"

# A small feed page as the hub makes one (hub/feed.py), sealed to the station: header extras after/next/more.
SEALED_FEED_BODY: dict[str, object] = {
    "station": ORIGIN, "after": 0, "next": 1, "more": False,
    "changes": [VECTOR_CHANGES[0]], "origins": {ORIGIN: "village"}, "catalogue": None, "revoked": [],
    "hub_ms": 1_772_000_000_500, "generation": "g1",
}  # fmt: skip
SEALED_FEED_EXTRA: dict[str, object] = {"after": 0, "next": 1, "more": False}


def _sealed_feed() -> bytes:
    return sign_document(
        "feed", SEALED_FEED_BODY, signer=HUB_ID, recipient=ORIGIN,
        signing_key=signing_key_from_seed(HUB_SIGN_SEED),
        seal_to=sealing_key_from_seed(STATION_SEAL_SEED).public_key(), extra_header=SEALED_FEED_EXTRA,
    )  # fmt: skip


def _batch(level: int) -> bytes:
    return build_batch(
        origin=ORIGIN, epoch=1, first_seq=1, changes=VECTOR_CHANGES, prev=ZERO_HASH, recipient=RECIPIENT,
        hlc=1_772_000_000_001 << 16, signing_key=signing_key_from_seed(SIGN_SEED), compress_level=level,
    )  # fmt: skip


def _header_hash(frame: bytes) -> str:
    vb = verify_batch(
        frame,
        recipient=RECIPIENT,
        verify_key=lambda signer, kid: signing_key_from_seed(SIGN_SEED).public_key(),
    )
    return vb.batch_hash.hex()


def build_vectors() -> dict[str, object]:
    sign_pub = public_bytes(signing_key_from_seed(SIGN_SEED))
    seal_pub = public_bytes(sealing_key_from_seed(SEAL_SEED))
    stored = _batch(0)
    compressed = _batch(6)
    return {
        "keys": {
            "sign_seed": SIGN_SEED.hex(),
            "sign_public": sign_pub.hex(),
            "sign_key_id": key_id(sign_pub),
            "seal_seed": SEAL_SEED.hex(),
            "seal_public": seal_pub.hex(),
            "seal_key_id": key_id(seal_pub),
        },
        "canonical_pack": {
            "note": "value: the input, keys in the order given (the encoding sorts them); tags as in documents",
            "value": to_json(CANONICAL_VALUE),
            "hex": pack(CANONICAL_VALUE).hex(),
        },
        "batch_stored": {
            "note": "compress_level=0, so the bytes do not depend on the zlib implementation",
            "changes": VECTOR_CHANGES,
            "frame_hex": stored.hex(),
            "header_hash_hex": _header_hash(stored),
        },
        "batch_level6": {
            "note": "default level; checked for readability, not byte equality (zlib builds differ)",
            "frame_hex": compressed.hex(),
            "header_hash_hex": _header_hash(compressed),
        },
        "sealed_feed": _sealed_feed_vector(),
        "documents": document_vectors(),
    }


def _sealed_feed_vector() -> dict[str, object]:
    frame = _sealed_feed()
    hub_pub = public_bytes(signing_key_from_seed(HUB_SIGN_SEED))
    station_seal_pub = public_bytes(sealing_key_from_seed(STATION_SEAL_SEED))
    return {
        "note": (
            "a feed page the hub signed and HPKE-sealed to the station; bytes differ at each "
            "regeneration (random HPKE ephemeral key); open it with recipient_seal_seed"
        ),
        "signer": HUB_ID,
        "signer_sign_seed": HUB_SIGN_SEED.hex(),
        "signer_sign_public": hub_pub.hex(),
        "signer_key_id": key_id(hub_pub),
        "recipient": ORIGIN,
        "recipient_seal_seed": STATION_SEAL_SEED.hex(),
        "recipient_seal_public": station_seal_pub.hex(),
        "recipient_key_id": key_id(station_seal_pub),
        "hpke_suite": "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305; base mode; empty AAD",
        "hpke_info_hex": seal_info(ORIGIN, key_id(station_seal_pub)).hex(),
        "body": SEALED_FEED_BODY,
        "body_canonical_hex": pack(SEALED_FEED_BODY).hex(),
        "frame_hex": frame.hex(),
    }


def _trust(signer: str, kid: str) -> object:
    return signing_key_from_seed(SIGN_SEED).public_key()


def _vectors() -> dict[str, dict[str, str]]:
    # Read per test, not at import, so regenerating with a shell redirect does not read a truncated file.
    loaded: dict[str, dict[str, str]] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
    return loaded


def test_key_vectors() -> None:
    keys = _vectors()["keys"]
    sign_pub = public_bytes(signing_key_from_seed(bytes.fromhex(keys["sign_seed"])))
    seal_pub = public_bytes(sealing_key_from_seed(bytes.fromhex(keys["seal_seed"])))
    assert (sign_pub.hex(), key_id(sign_pub)) == (keys["sign_public"], keys["sign_key_id"])
    assert (seal_pub.hex(), key_id(seal_pub)) == (keys["seal_public"], keys["seal_key_id"])


def test_canonical_pack_vector() -> None:
    expected = bytes.fromhex(_vectors()["canonical_pack"]["hex"])
    assert pack(CANONICAL_VALUE) == expected
    assert pack(unpack(expected)) == expected
    # The stored input value is the one encoded (JSON has no tuples: they are arrays, as msgpack has them).
    stored: object = _vectors()["canonical_pack"]["value"]
    assert pack(from_json(stored)) == expected
    assert list(stored) == list(CANONICAL_VALUE)  # type: ignore[call-overload, arg-type]  # unsorted, as given


def test_every_document_kind_has_a_vector_reproduced_byte_for_byte() -> None:
    stored = _vectors()["documents"]
    seeds = {k: bytes.fromhex(v) for k, v in stored["seeds"].items()}  # type: ignore[attr-defined]
    frames: list[dict[str, object]] = stored["frames"]  # type: ignore[assignment]
    made = document_frames()
    assert [f["body_class"] for f in frames] == [name for name, *_ in made]
    kinds = {str(f["kind"]) for f in frames}
    assert kinds == {cls.KIND for cls in BODIES if hasattr(cls, "KIND")}  # every document kind, no other
    classes = {cls.__name__: cls for cls in BODIES}
    for vector, (name, body, frame, header_hash) in zip(frames, made, strict=True):
        assert (frame.hex(), header_hash.hex()) == (vector["frame_hex"], vector["header_hash_hex"]), name
        pub = signing_key_from_seed(seeds[str(vector["signer_seed"])]).public_key()
        assert key_id(public_bytes(pub)) == vector["signer_key_id"]
        doc = open_document(
            frame,
            kind=str(vector["kind"]),
            recipient=str(vector["recipient"]),
            verify_key=lambda s, k, pub=pub: pub,  # type: ignore[arg-type, misc]
        )
        assert doc.header_hash == header_hash
        assert doc.body == from_json(vector["body"])
        assert {k: doc.header[k] for k in from_json(vector["header_extra"])} == from_json(vector["header_extra"])  # type: ignore[union-attr]
        typed: Message = classes[name].from_wire(doc.body)  # type: ignore[attr-defined]
        assert typed == body and typed.to_wire() == doc.body  # read once, written back the same


def test_batch_vector_is_reproduced_byte_for_byte() -> None:
    vector: dict[str, object] = dict(_vectors()["batch_stored"])
    assert vector["changes"] == VECTOR_CHANGES
    frame = _batch(0)
    assert frame.hex() == vector["frame_hex"]
    assert _header_hash(frame) == vector["header_hash_hex"]


def test_stored_vectors_still_open() -> None:
    vectors = _vectors()
    for name in ("batch_stored", "batch_level6"):
        frame = bytes.fromhex(vectors[name]["frame_hex"])
        vb = verify_batch(frame, recipient=RECIPIENT, verify_key=_trust)  # type: ignore[arg-type]
        assert vb.batch_hash == hashlib.sha256(vb.frame.header_bytes).digest()
        assert vb.batch_hash.hex() == vectors[name]["header_hash_hex"]
        assert open_batch_changes(vb) == VECTOR_CHANGES


def test_sealed_feed_vector_opens_with_the_recipient_seed() -> None:
    vector: dict[str, object] = dict(_vectors()["sealed_feed"])
    frame = bytes.fromhex(str(vector["frame_hex"]))
    hub_pub = signing_key_from_seed(bytes.fromhex(str(vector["signer_sign_seed"]))).public_key()
    station_seal = sealing_key_from_seed(bytes.fromhex(str(vector["recipient_seal_seed"])))
    assert public_bytes(hub_pub).hex() == vector["signer_sign_public"]
    assert public_bytes(station_seal).hex() == vector["recipient_seal_public"]
    assert key_id(public_bytes(station_seal)) == vector["recipient_key_id"]

    def trust(signer: str, kid: str) -> object:
        return hub_pub if (signer, kid) == (vector["signer"], vector["signer_key_id"]) else None

    def unseal(kid: str) -> object:
        return station_seal if kid == vector["recipient_key_id"] else None

    verified = verify_frame(frame, recipient=str(vector["recipient"]), verify_key=trust)  # type: ignore[arg-type]
    header = verified.header
    assert header["sealed"] is True and header["kind"] == "feed" and header["codec"] == "zlib"
    assert (header["signer"], header["signer_key"]) == (vector["signer"], vector["signer_key_id"])
    assert (header["recipient"], header["recipient_key"]) == (vector["recipient"], vector["recipient_key_id"])
    assert {k: header[k] for k in SEALED_FEED_EXTRA} == SEALED_FEED_EXTRA
    assert header["body_sha256"] == hashlib.sha256(verified.body).digest()
    assert seal_info(str(vector["recipient"]), str(vector["recipient_key_id"])).hex() == vector["hpke_info_hex"]
    doc = open_document(
        frame,
        kind="feed",
        recipient=str(vector["recipient"]),
        verify_key=trust,  # type: ignore[arg-type]
        unseal_key=unseal,
    )  # type: ignore[arg-type]
    assert doc.body == vector["body"] == SEALED_FEED_BODY
    assert pack(doc.body).hex() == vector["body_canonical_hex"]
    # Without the recipient's key it stays closed.
    with pytest.raises(UnknownKeyError):
        open_document(frame, kind="feed", recipient=str(vector["recipient"]), verify_key=trust)  # type: ignore[arg-type]


if __name__ == "__main__":
    print(json.dumps(build_vectors(), ensure_ascii=False, indent=2))
