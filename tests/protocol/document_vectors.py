"""One frame of every document kind, for `vectors.json` (`documents`): fixed seeds, compress_level 0, unsealed,
so each is reproduced byte for byte (Ed25519 signatures are deterministic). Bodies are built with the typed
classes of protocol/ (what the hub and the stations use), so a vector is what the code sends.

JSON cannot hold every msgpack value as such, so bodies and header extras are written with two tags:
``{"$bin": "hex"}`` for a bin, ``{"$int": "decimal"}`` for an integer outside +-2^53 (a JavaScript
number would round it). Arrays are arrays, maps are maps, floats are floats.
"""

from __future__ import annotations

from protocol.acks import Ack, Acks, Receipt
from protocol.blob import BlobRequest, BlobsHeld
from protocol.enrolment_docs import EnrolChallenge, Enrollment
from protocol.feed import FeedPage, FeedSpan, PullRequest
from protocol.hubkey_docs import KeysDoc, RootChange
from protocol.keys import key_id, public_bytes, signing_key_from_seed
from protocol.reconciliation import ReconcileRequest, RecordsAnswer, Summary, SummaryAnswer
from protocol.release import Release
from protocol.wire import Message, sign_message

STATION = "360802-T01-05"
HUB_ID = "hub-360802"
STATION_SIGN_SEED = bytes(range(32))
HUB_SIGN_SEED = bytes(range(64, 96))
ROOT_SEED = bytes(range(96, 128))
NEXT_ROOT_SEED = bytes(range(128, 160))
T_MS = 1_772_000_000_000
HLC = T_MS << 16
CHANGE: list[object] = [STATION, 1, 1, HLC, "application", "a-0001", {"status": "accepted"}, {}]
BATCH_HASH = bytes(range(200, 232))
PHOTO = "9f" * 32


def _pub(seed: bytes) -> bytes:
    return public_bytes(signing_key_from_seed(seed))


def _receipt() -> Receipt:
    return Receipt(BATCH_HASH, STATION, 1, 1, 3, 3, 0, HUB_ID, "章贡区行政审批局", "2026-02-25T14:13:20+08:00")


def _cases() -> list[tuple[Message, bytes, str, str, dict[str, object] | None]]:
    """(body, signing seed, signer, recipient, header extras) for every document kind."""
    receipt = sign_message(
        _receipt(), signer=HUB_ID, recipient=STATION, signing_key=signing_key_from_seed(HUB_SIGN_SEED)
    )
    hub_pub, root_pub, next_root = _pub(HUB_SIGN_SEED), _pub(ROOT_SEED), _pub(NEXT_ROOT_SEED)
    page = FeedPage(STATION, 0, 1, False, (CHANGE,), {STATION: "village"}, None, (), T_MS + 500, "g1")
    summary = sign_message(
        Summary(STATION, "2026-02-25T14:13:20+08:00", {"accepted": 1}),
        signer=HUB_ID,
        recipient=STATION,
        signing_key=signing_key_from_seed(HUB_SIGN_SEED),
        compress_level=0,
    )
    return [
        (
            Acks((Ack(BATCH_HASH, "applied", 4, "", receipt.frame, 3, 0), Ack(b"", "rejected", 0, "bad_signature: x"))),
            HUB_SIGN_SEED,
            HUB_ID,
            STATION,
            None,
        ),
        (_receipt(), HUB_SIGN_SEED, HUB_ID, STATION, None),
        (page, HUB_SIGN_SEED, HUB_ID, STATION, FeedSpan(0, 1, False, bytes(16)).to_wire()),
        (Release(3, "2026-02-25T14:13:20+08:00", "2026-08-24T14:13:20+08:00", {"district": "360802"}), HUB_SIGN_SEED,
         HUB_ID, "*", {"version": 3}),
        (PullRequest(0, T_MS, 3, 2, "", 5, 1, bytes(16)), STATION_SIGN_SEED, STATION, HUB_ID, None),
        (ReconcileRequest("records", T_MS, keys=("application:a-0001",)), STATION_SIGN_SEED, STATION, HUB_ID, None),
        (RecordsAnswer((CHANGE,), ((STATION, 1, 1),)), HUB_SIGN_SEED, HUB_ID, STATION, None),
        (Summary(STATION, "2026-02-25T14:13:20+08:00", {"accepted": 1}), HUB_SIGN_SEED, HUB_ID, STATION, None),
        (KeysDoc(HUB_ID, 1, root_pub, hub_pub, bytes(range(32, 64)), T_MS, T_MS + 365 * 86_400_000), ROOT_SEED,
         HUB_ID, "*", {"version": 1}),
        (RootChange(HUB_ID, 1, root_pub, next_root), ROOT_SEED, HUB_ID, "*", {"seq": 1}),
        (EnrolChallenge("0123456789abcdef", bytes(16), T_MS), HUB_SIGN_SEED, HUB_ID, "*", None),
        (Enrollment(STATION, "五里村", "village", "360802-T01", HUB_ID, "章贡区行政审批局", "https://hub.example",
                    hub_pub, bytes(range(32, 64)), root_pub, _pub(STATION_SIGN_SEED), None),
         HUB_SIGN_SEED, HUB_ID, STATION, None),
        (BlobRequest("query", PHOTO, 1000, at_ms=T_MS), STATION_SIGN_SEED, STATION, HUB_ID, None),
        (BlobsHeld(STATION, (PHOTO,)), HUB_SIGN_SEED, HUB_ID, STATION, None),
        # The answer to `summary` and `done` carries a whole signed `summary` frame as bin.
        (SummaryAnswer(summary.frame), HUB_SIGN_SEED, HUB_ID, STATION, None),
    ]  # fmt: skip


def to_json(value: object) -> object:
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return value
    if isinstance(value, int):
        return value if -(2**53) < value < 2**53 else {"$int": str(value)}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    raise TypeError(type(value))


def from_json(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(str(value["$bin"]))
        if set(value) == {"$int"}:
            return int(str(value["$int"]))
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def document_frames() -> list[tuple[str, Message, bytes, bytes]]:
    """(class name, body, frame, header hash) of every case."""
    out = []
    for body, seed, signer, recipient, extra in _cases():
        signed = sign_message(
            body,
            signer=signer,
            recipient=recipient,
            signing_key=signing_key_from_seed(seed),
            extra_header=extra,
            compress_level=0,
        )
        out.append((type(body).__name__, body, signed.frame, signed.hash))
    return out


def document_vectors() -> dict[str, object]:
    seeds = {"station": STATION_SIGN_SEED, "hub": HUB_SIGN_SEED, "root": ROOT_SEED}
    cases = []
    for (name, body, frame, header_hash), (_, seed, signer, recipient, extra) in zip(
        document_frames(), _cases(), strict=True
    ):
        cases.append(
            {
                "kind": body.KIND,
                "body_class": name,
                "signer": signer,
                "signer_key_id": key_id(_pub(seed)),
                "signer_seed": next(k for k, v in seeds.items() if v == seed),
                "recipient": recipient,
                "header_extra": to_json(extra or {}),
                "body": to_json(body.to_wire()),
                "frame_hex": frame.hex(),
                "header_hash_hex": header_hash.hex(),
            }
        )
    return {
        "note": (
            "one frame of every document kind, unsealed, compress_level=0, reproduced byte for byte; "
            "bodies use {'$bin': hex} for bin and {'$int': decimal} for integers outside +-2^53"
        ),
        "seeds": {k: v.hex() for k, v in seeds.items()},
        "frames": cases,
    }


__all__ = ["document_frames", "document_vectors", "from_json", "to_json"]
