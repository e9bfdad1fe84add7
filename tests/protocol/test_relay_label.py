"""The township's proof that it forwarded a request (protocol/relay_label.py): it proves one township,
one hub, one route, one body, within a window; moved onto anything else it proves nothing."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocol import relay_label
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.frame import VerifyKey
from protocol.keys import signing_key_from_seed

TOWNSHIP, HUB = "360802-T01", "360802"
NOW = 1_800_000_000_000
KEY = signing_key_from_seed(bytes(range(32)))
OTHER = signing_key_from_seed(bytes(range(1, 33)))
BODY = b"\x91\xc4\x03abc"  # any bytes: the proof binds them by SHA-256


def keys(known: dict[str, Ed25519PrivateKey]) -> VerifyKey:
    def lookup(signer: str, _kid: str) -> Ed25519PublicKey | None:
        key = known.get(signer)
        return key.public_key() if key is not None else None

    return lookup


def check(value: str, **changes: object) -> None:
    args: dict[str, object] = {
        "hub_id": HUB,
        "route": relay_label.PUSH_ROUTE,
        "body_sha256": hashlib.sha256(BODY).digest(),
        "now_ms": NOW,
        "verify_key": keys({TOWNSHIP: KEY}),
    }
    township = str(changes.pop("township", TOWNSHIP))
    args.update(changes)
    relay_label.verify(township, value, **args)  # type: ignore[arg-type]


def refused(value: str, **changes: object) -> str:
    with pytest.raises(RemoteProtocolError) as exc:
        check(value, **changes)
    return exc.value.code


def test_a_proof_verifies_for_what_it_was_made_for() -> None:
    proof = relay_label.sign(KEY, TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW - 60_000)
    check(proof)
    assert len(proof) < relay_label.PROOF_MAX_CHARS
    pull = relay_label.sign(KEY, TOWNSHIP, HUB, relay_label.PULL_ROUTE, BODY, NOW)
    check(pull, route=relay_label.PULL_ROUTE)


def test_a_proof_moved_onto_anything_else_proves_nothing() -> None:
    proof = relay_label.sign(KEY, TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW)
    assert refused(proof, body_sha256=hashlib.sha256(BODY + b"\x00").digest()) == "bad_signature"  # another body
    assert refused(proof, body_sha256=hashlib.sha256(b"").digest()) == "bad_signature"
    assert refused(proof, route=relay_label.PULL_ROUTE) == "bad_signature"  # another route
    assert refused(proof, hub_id="360803") == "bad_signature"  # another hub
    # Another township's name on it: its key is not the one that signed.
    other = keys({TOWNSHIP: KEY, "360802-T02": OTHER})
    assert refused(proof, township="360802-T02", verify_key=other) == "unknown_key"
    both = keys({TOWNSHIP: KEY, "360802-T02": KEY})  # even one sharing the key: the name is signed
    assert refused(proof, township="360802-T02", verify_key=both) == "bad_signature"


def test_a_proof_by_another_key_or_of_an_unknown_township_is_refused() -> None:
    forged = relay_label.sign(OTHER, TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW)
    assert refused(forged) == "unknown_key"  # the key id names a key the hub does not hold for it
    assert refused(forged, verify_key=keys({})) == "unknown_key"
    # A signature by another key under the township's own key id: it does not verify.
    real = relay_label.sign(KEY, TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW)
    head, _, _ = real.rpartition(".")
    swapped = head + "." + forged.rpartition(".")[2]
    assert refused(swapped) == "bad_signature"


def test_an_old_proof_is_stale() -> None:
    window = relay_label.PROOF_WINDOW_MS
    check(relay_label.sign(KEY, TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW - window))
    late = relay_label.sign(KEY, TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW - window - 1)
    assert refused(late) == "stale"
    early = relay_label.sign(KEY, TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW + window + 1)
    assert refused(early) == "stale"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "v1",
        "v2.1.0011223344556677.AAAA",
        "v1.x.0011223344556677.AAAA",
        "v1.-5.0011223344556677.AAAA",
        "v1.1.NOTAKEYID.AAAA",
        "v1.1.0011223344556677.AAAA",  # a signature of 3 bytes
        "v1.1.0011223344556677.!!!!",
        "v1." + "9" * 300,
    ],
)
def test_a_malformed_proof_is_refused_before_any_key_is_looked_up(value: str) -> None:
    def no_lookup(signer: str, kid: str) -> Ed25519PublicKey | None:
        raise AssertionError("looked up a key for a malformed proof")

    assert refused(value, verify_key=no_lookup) == "malformed"


def test_the_label_must_name_a_township() -> None:
    proof = relay_label.sign(KEY, TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW)
    assert refused(proof, township="") == "malformed"
    assert refused(proof, township="x" * 41) == "malformed"
    assert refused(proof, route="/v1/reconcile") == "malformed"


def test_the_message_binds_a_whole_digest() -> None:
    with pytest.raises(LocalProtocolError):
        relay_label.message(TOWNSHIP, HUB, relay_label.PUSH_ROUTE, BODY, NOW)  # the body, not its digest
