"""Enrolment proofs, shared by the station and the hub.

A token is `SJT-` then 16 characters of secret and the 12 characters of the hub root key's
fingerprint, in groups of four (`SJT-ABCD-EFGH-JKMN-PQRS-XXXX-YYYY-ZZZZ`): short enough to read aloud
or type, and printed as a QR code on the enrolment slip. Its two halves do two jobs:
- the secret never crosses the wire. Both sides derive a MAC key from it (:func:`token_key`, which is
  also all the hub stores). Online, the station proves it holds the token with an HMAC over a
  challenge the hub issued and its own public keys; a listener learns nothing it can reuse, and
  cannot swap in its own keys. The hub's answer is MACed with the same key and the same challenge.
- the fingerprint names the hub's root key. The station refuses an answer or an enrolment file whose
  key history does not start from a root with that fingerprint, so someone who learned the token (or
  holds the file) still cannot make the station trust another hub.
A station that has never been online carries a *claim* instead: its public keys and an HMAC over them
with the same key, which the hub checks when the claim arrives on a USB stick.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from protocol.codec import pack, unpack
from protocol.errors import MalformedError
from protocol.hubkeys import CROCKFORD, FINGERPRINT_CHARS, crockford, fingerprint_chars

ENROLMENT_MAGIC = b"SJE2"
CLAIM_MAGIC = b"SJC1"
TOKEN_PREFIX = "SJT"
SECRET_BYTES = 10
SECRET_CHARS = 16  # 80 bits: far beyond guessing within a token's 14 days
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})  # what people mistype for Crockford digits


@dataclass(frozen=True)
class Token:
    secret: str  # 16 Crockford characters
    fingerprint: str  # 12 Crockford characters: the hub root key's fingerprint

    def __str__(self) -> str:
        raw = self.secret + self.fingerprint
        return TOKEN_PREFIX + "-" + "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))

    @property
    def fingerprint_text(self) -> str:
        return "-".join(self.fingerprint[i : i + 4] for i in range(0, FINGERPRINT_CHARS, 4))


def make_token(secret: bytes, root_pub: bytes) -> Token:
    """A token from `SECRET_BYTES` random bytes the caller drew, for the hub whose root is `root_pub`."""
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise MalformedError(f"a token secret is {SECRET_BYTES} bytes")
    return Token(crockford(secret, SECRET_CHARS), fingerprint_chars(root_pub))


def parse_token(text: str) -> Token:
    """Read a token as typed (any case, with or without dashes and spaces, O/I/L for 0/1)."""
    if not isinstance(text, str):
        raise MalformedError("an enrolment token is text")
    raw = text.upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    if not raw.startswith(TOKEN_PREFIX):
        raise MalformedError("令牌应以 SJT- 开头 (an enrolment token starts with SJT-; copy it from the slip)")
    raw = raw[len(TOKEN_PREFIX) :]
    if len(raw) != SECRET_CHARS + FINGERPRINT_CHARS or any(c not in CROCKFORD for c in raw):
        raise MalformedError(
            "令牌格式不对，请核对登记单 (the enrolment token is not in the current format: check it "
            "against the enrolment slip, or ask the hub operator for a new one)"
        )
    return Token(raw[:SECRET_CHARS], raw[SECRET_CHARS:])


def token_key(token: Token) -> bytes:
    """The MAC key both sides derive from the token's secret; the hub stores only this."""
    return hashlib.sha256(b"sanji-token-v2\x00" + token.secret.encode()).digest()


def token_id(key: bytes) -> str:
    """A public name for a token (so the hub can find it) from which its key cannot be recovered."""
    return hashlib.sha256(b"sanji-token-id-v2\x00" + key).digest()[:8].hex()


def enrol_proof(key: bytes, challenge: bytes, sign_pub: bytes, seal_pub: bytes) -> bytes:
    """The station's proof that it holds the token, bound to the hub's challenge and its own keys."""
    return hmac.new(key, pack(["sanji-enrol-v2", challenge, sign_pub, seal_pub]), "sha256").digest()


def answer_mac(key: bytes, challenge: bytes, document: bytes) -> bytes:
    """The hub's MAC over its enrolment answer (`challenge` is b"" for an enrolment file)."""
    return hmac.new(key, pack(["sanji-enrol-answer-v2", challenge, document]), "sha256").digest()


def check_answer_mac(key: bytes, challenge: bytes, document: bytes, mac: bytes) -> bool:
    return hmac.compare_digest(answer_mac(key, challenge, document), mac)


def claim_proof(digest: bytes, station: str, sign_pub: bytes, seal_pub: bytes) -> bytes:
    return hmac.new(digest, pack(["sanji-claim-v1", station, sign_pub, seal_pub]), "sha256").digest()


def encode_claim(station: str, sign_pub: bytes, seal_pub: bytes, proof: bytes) -> bytes:
    return CLAIM_MAGIC + pack({"station": station, "sign_pub": sign_pub, "seal_pub": seal_pub, "proof": proof})


def decode_claim(data: bytes) -> tuple[str, bytes, bytes, bytes]:
    """(station, sign_pub, seal_pub, proof) from a claim file; MalformedError if it is not one."""
    if not data.startswith(CLAIM_MAGIC) or len(data) > 4096:
        raise MalformedError("not a Sanji claim file")
    raw = unpack(data[len(CLAIM_MAGIC) :])
    if not isinstance(raw, dict):
        raise MalformedError("claim is not a map")
    station, sign_pub, seal_pub, proof = (raw.get(k) for k in ("station", "sign_pub", "seal_pub", "proof"))
    if not (
        isinstance(station, str)
        and isinstance(sign_pub, bytes)
        and isinstance(seal_pub, bytes)
        and isinstance(proof, bytes)
        and len(sign_pub) == 32
        and len(seal_pub) == 32
    ):
        raise MalformedError("claim is missing its station, keys or proof")
    return station, sign_pub, seal_pub, proof


def encode_enrolment(answer: dict[str, object]) -> bytes:
    """An enrolment answer as a file a person can carry to a station that has never been online.
    It carries no token: the station needs the slip's token too, which is what binds the file to the
    hub's root (see the module docstring)."""
    return ENROLMENT_MAGIC + pack(answer)


def decode_enrolment(data: bytes) -> dict[str, object]:
    if data.startswith(b"SJE1"):
        raise MalformedError(
            "这是旧格式的登记文件，请在区局重新生成 (an enrolment file of the old format, which "
            "carried its token: ask the hub operator for a new file and token)"
        )
    if not data.startswith(ENROLMENT_MAGIC):
        raise MalformedError("not a Sanji enrolment file")
    raw = unpack(data[len(ENROLMENT_MAGIC) :])
    if not isinstance(raw, dict):
        raise MalformedError("enrolment file is not a map")
    return raw
