"""Enrolment proofs, shared by the station and the hub.

A one-time token is the only secret a station starts with. Over HTTP the station sends it; the hub
answers with its signed enrolment document and an HMAC of that document keyed with the token, so the
station knows the answer came from whoever issued the token before it pins the hub's keys. A station
that has never been online carries a *claim* instead: its public keys and an HMAC over them keyed with
the token's SHA-256 (what the hub stores), so the hub can check it without keeping the token.
"""

from __future__ import annotations

import hashlib
import hmac

from protocol.codec import pack, unpack
from protocol.errors import MalformedError

ENROLMENT_MAGIC = b"SJE1"
CLAIM_MAGIC = b"SJC1"


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def answer_mac(token: str, document: bytes) -> bytes:
    return hmac.new(token.encode(), document, "sha256").digest()


def check_answer_mac(token: str, document: bytes, mac: bytes) -> bool:
    return hmac.compare_digest(answer_mac(token, document), mac)


def claim_proof(digest: bytes, station: str, sign_pub: bytes, seal_pub: bytes) -> bytes:
    return hmac.new(digest, pack(["sanji-claim-v1", station, sign_pub, seal_pub]), "sha256").digest()


def encode_claim(station: str, sign_pub: bytes, seal_pub: bytes, proof: bytes) -> bytes:
    return CLAIM_MAGIC + pack({"station": station, "sign_pub": sign_pub, "seal_pub": seal_pub, "proof": proof})


def decode_claim(data: bytes) -> tuple[str, bytes, bytes, bytes]:
    """(station, sign_pub, seal_pub, proof) from a claim file; MalformedError if it is not one."""
    if not data.startswith(CLAIM_MAGIC) or len(data) > 4096:
        raise MalformedError("not a Sanji claim file")
    raw = unpack(data[len(CLAIM_MAGIC):])
    if not isinstance(raw, dict):
        raise MalformedError("claim is not a map")
    station, sign_pub, seal_pub, proof = (raw.get(k) for k in ("station", "sign_pub", "seal_pub", "proof"))
    if not (isinstance(station, str) and isinstance(sign_pub, bytes) and isinstance(seal_pub, bytes)
            and isinstance(proof, bytes) and len(sign_pub) == 32 and len(seal_pub) == 32):
        raise MalformedError("claim is missing its station, keys or proof")
    return station, sign_pub, seal_pub, proof


def encode_enrolment(answer: dict[str, object]) -> bytes:
    """An enrolment answer as a file a person can carry to a station that has never been online."""
    return ENROLMENT_MAGIC + pack(answer)


def decode_enrolment(data: bytes) -> dict[str, object]:
    if not data.startswith(ENROLMENT_MAGIC):
        raise MalformedError("not a Sanji enrolment file")
    raw = unpack(data[len(ENROLMENT_MAGIC):])
    if not isinstance(raw, dict):
        raise MalformedError("enrolment file is not a map")
    return raw
