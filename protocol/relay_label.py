"""The township's signed word that it forwarded a request: ``X-Sanji-Relay`` names the township,
``X-Sanji-Relay-Proof`` proves it (issue 17).

The hub raises ``relay_seen`` alerts naming the township that forwarded a bad frame, a batch of another
township's village, or a batch that opened a gap. A bare name is a header anyone can write, so anyone
could get any township named; the proof makes the name the township's own. It is an Ed25519 signature
by the township's station key over a domain-separated message binding:

- the township's code and the hub it forwards to (a proof is good at one hub, for one township);
- the route (``/v1/sync/push`` or ``/v1/sync/pull``; the route, not the URL's path, so a proxy in front
  of the hub changes nothing);
- the SHA-256 of the exact bytes forwarded (a push's body; a pull's signed request, decoded), so a
  captured proof cannot be moved onto another body;
- the township's time, so a captured request replayed later than ``PROOF_WINDOW_MS`` proves nothing.

The header's value is ``v1.<at_ms>.<key_id>.<signature, base64url without padding>``. Pure: the caller
supplies the time and the station keys it trusts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.codec import pack
from protocol.errors import LocalProtocolError, MalformedError, SignatureError, UnknownKeyError
from protocol.frame import VerifyKey
from protocol.keys import is_key_id, key_id, public_bytes

RELAY_HEADER = "X-Sanji-Relay"
PROOF_HEADER = "X-Sanji-Relay-Proof"
PUSH_ROUTE = "/v1/sync/push"
PULL_ROUTE = "/v1/sync/pull"
ROUTES = frozenset({PUSH_ROUTE, PULL_ROUTE})
# The same window as a pull request's own time (hub/web/sync.py PULL_WINDOW_MS): a station's clock is
# already required to be this close to the hub's.
PROOF_WINDOW_MS = 15 * 60 * 1000
PROOF_MAX_CHARS = 200  # a genuine one is about 110; read before anything is verified
LABEL_MAX_CHARS = 40
# Distinct from every other signature a station makes (frames use b"sanji-frame-v1\x00"), so no
# signature made for something else can pass as a proof, nor a proof as anything else.
_DOMAIN = b"sanji-relay-v1\x00"
_VERSION = "v1"


@dataclass(frozen=True)
class Proof:
    at_ms: int
    key_id: str
    signature: bytes


def message(township: str, hub_id: str, route: str, body_sha256: bytes, at_ms: int) -> bytes:
    """The bytes the township signs (``body_sha256``: the SHA-256 of the bytes forwarded)."""
    if len(body_sha256) != 32:
        raise LocalProtocolError("a relay proof binds the 32-byte SHA-256 of what was forwarded")
    return _DOMAIN + pack([township, hub_id, route, at_ms, body_sha256])


def sign(key: Ed25519PrivateKey, township: str, hub_id: str, route: str, forwarded: bytes, at_ms: int) -> str:
    """The ``X-Sanji-Relay-Proof`` value for forwarding ``forwarded`` on ``route`` at ``at_ms``."""
    signature = key.sign(message(township, hub_id, route, hashlib.sha256(forwarded).digest(), at_ms))
    kid = key_id(public_bytes(key))
    return f"{_VERSION}.{at_ms}.{kid}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def parse(value: str) -> Proof:
    """A proof header's parts; MalformedError for anything else."""
    if len(value) > PROOF_MAX_CHARS:
        raise MalformedError(f"{PROOF_HEADER} is longer than {PROOF_MAX_CHARS} characters")
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != _VERSION:
        raise MalformedError(f"{PROOF_HEADER} is not v1.<at_ms>.<key_id>.<signature>")
    _, at, kid, sig = parts
    if not at.isascii() or not at.isdigit() or len(at) > 18 or not is_key_id(kid):
        raise MalformedError(f"{PROOF_HEADER} has a bad time or key id")
    try:
        signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"{PROOF_HEADER} signature is not base64url") from exc
    if len(signature) != 64:
        raise MalformedError(f"{PROOF_HEADER} signature is not 64 bytes")
    return Proof(int(at), kid, signature)


def verify(
    township: str,
    value: str,
    *,
    hub_id: str,
    route: str,
    body_sha256: bytes,
    now_ms: int,
    verify_key: VerifyKey,
) -> None:
    """Return when ``value`` proves that ``township`` forwarded the bytes whose SHA-256 is ``body_sha256``
    on ``route`` to ``hub_id`` within the window around ``now_ms`` (the caller hashes, so that a 32 MiB
    push can be hashed off an event loop); else raise, with the code saying why: ``malformed``, ``stale``,
    ``unknown_key`` (no trusted key of that township by that id), ``bad_signature``, or whatever
    ``verify_key`` raises (a revoked township)."""
    if not township or len(township) > LABEL_MAX_CHARS:
        raise MalformedError(f"{RELAY_HEADER} must name a township")
    if route not in ROUTES:
        raise MalformedError(f"no relay proof is made for the route {route!r}")
    proof = parse(value)
    if abs(proof.at_ms - now_ms) > PROOF_WINDOW_MS:
        late = (now_ms - proof.at_ms) // 1000
        raise MalformedError(f"{PROOF_HEADER} was made {late} s from the hub's time", code="stale")
    pub = verify_key(township, proof.key_id)
    if pub is None or key_id(public_bytes(pub)) != proof.key_id:
        raise UnknownKeyError(f"no trusted key {proof.key_id} of {township}")
    try:
        pub.verify(proof.signature, message(township, hub_id, route, body_sha256, proof.at_ms))
    except InvalidSignature as exc:
        raise SignatureError(f"{PROOF_HEADER} does not verify for this body from {township}") from exc


__all__ = [
    "LABEL_MAX_CHARS",
    "PROOF_HEADER",
    "PROOF_WINDOW_MS",
    "PULL_ROUTE",
    "PUSH_ROUTE",
    "RELAY_HEADER",
    "Proof",
    "message",
    "parse",
    "sign",
    "verify",
]
