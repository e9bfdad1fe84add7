"""The hub's two levels of keys: a root that rarely moves, and the online keys it vouches for.

The root key (Ed25519) signs only two kinds of document, and both are broadcast (`"*"`):
- `hub-keys`: the list of the hub's current online keys (one signing key, the sealing key), with its
  own `version` (only ever goes up) and an expiry. The online signing key signs everything else
  (feeds, releases, receipts, enrolment answers).
- `hub-root`: "the root after `prev` is `root`", signed by `prev`. It is how a root is replaced (the
  new root signed by the old one) and how a hub made before roots existed introduces its first root
  to the stations that pinned its online key (signed by that key).

A station keeps one trust anchor (the root it pinned) and the newest list it has accepted. Given the
hub's history in order, :func:`follow` walks from the anchor through every root change it can verify
and returns the newest list signed by the root it ends on. Documents signed by keys off that path are
skipped, not trusted, so a history may carry an older branch without harm; a list whose version is
not above the one held never replaces it (no rollback). Whether the result is still in date is a
separate question (:func:`check_current`), asked by the caller with its own clock.

The fingerprint is what people compare: 12 characters of Crockford base32 (60 bits of a SHA-256 of
the root key), short enough to read aloud and carried inside every enrolment token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocol.document import open_document
from protocol.errors import MalformedError, ValidationError
from protocol.frame import BROADCAST, peek_header
from protocol.hubkey_docs import KEYS_KIND, ROOT_KIND, KeysDoc, RootChange
from protocol.keys import KEY_BYTES, key_id, load_verify_key, public_bytes
from protocol.wire import sign_message

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
FINGERPRINT_CHARS = 12
MAX_HISTORY = 4096  # documents in a history: far beyond decades of yearly rotations
# A key history carried by hand (`.sjk`): these four bytes, then the canonical msgpack of the bundle.
KEYS_MAGIC = b"SJK1"


class KeyChainError(ValidationError):
    """The hub's key history does not lead anywhere we can trust (messages say what to do)."""

    default_code = "bad_key_chain"


def crockford(data: bytes, chars: int) -> str:
    """The first `chars` base32 characters (Crockford's alphabet: no I, L, O, U) of `data`."""
    bits = int.from_bytes(data, "big")
    total = len(data) * 8
    return "".join(CROCKFORD[(bits >> (total - 5 * (i + 1))) & 31] for i in range(chars))


def fingerprint(root_pub: bytes) -> str:
    """The root key's fingerprint as people read it: ``XXXX-XXXX-XXXX``."""
    raw = fingerprint_chars(root_pub)
    return "-".join(raw[i : i + 4] for i in range(0, FINGERPRINT_CHARS, 4))


def fingerprint_chars(root_pub: bytes) -> str:
    """The fingerprint without separators (what a token carries)."""
    if not isinstance(root_pub, bytes) or len(root_pub) != KEY_BYTES:
        raise ValidationError("a root key is 32 bytes")
    return crockford(hashlib.sha256(b"sanji-root-fingerprint-v1\x00" + root_pub).digest(), FINGERPRINT_CHARS)


@dataclass(frozen=True)
class KeyList:
    """One accepted `hub-keys` list: the root that signed it and the online keys it names."""

    root: bytes
    version: int
    sign: bytes
    seal: bytes
    issued_ms: int
    expires_ms: int

    @property
    def sign_key_id(self) -> str:
        return key_id(self.sign)


def sign_root_change(prev_key: Ed25519PrivateKey, new_root: bytes, *, hub_id: str, seq: int) -> bytes:
    """`prev_key` names `new_root` as the root that follows it."""
    body = RootChange(hub_id, seq, public_bytes(prev_key), new_root)
    return sign_message(body, signer=hub_id, recipient=BROADCAST, signing_key=prev_key, extra_header={"seq": seq}).frame


def sign_key_list(
    root_key: Ed25519PrivateKey, *, hub_id: str, version: int, sign: bytes, seal: bytes, issued_ms: int, expires_ms: int
) -> bytes:
    """The root's list of the hub's current online keys."""
    body = KeysDoc(hub_id, version, public_bytes(root_key), sign, seal, issued_ms, expires_ms)
    return sign_message(
        body, signer=hub_id, recipient=BROADCAST, signing_key=root_key, extra_header={"version": version}
    ).frame


def _open_root(doc: bytes, key: bytes) -> RootChange:
    try:
        return RootChange.from_wire(_open(doc, ROOT_KIND, key))
    except MalformedError as exc:
        raise KeyChainError(f"a hub-root change is malformed: {exc}") from exc


def _open_keys(doc: bytes, key: bytes) -> KeysDoc:
    try:
        return KeysDoc.from_wire(_open(doc, KEYS_KIND, key))
    except MalformedError as exc:
        raise KeyChainError(f"a hub-keys list is malformed: {exc}") from exc


def _open(doc: bytes, kind: str, key: bytes) -> object:
    pub: Ed25519PublicKey = load_verify_key(key)
    kid = key_id(key)
    return open_document(doc, kind=kind, recipient=BROADCAST, verify_key=lambda s, k: pub if k == kid else None).body


def follow(history: Sequence[bytes], *, hub_id: str, anchor: bytes, version: int = 0) -> tuple[bytes, KeyList | None]:
    """Walk `history` in order from the trusted `anchor`.

    Returns the root reached and the newest `hub-keys` list signed by it with a version above
    `version` (None when there is none: nothing new). A document that names our current root as its
    signer but does not verify is an attack or damage, and refuses the whole history.
    """
    if len(history) > MAX_HISTORY:
        raise KeyChainError(f"the hub's key history has more than {MAX_HISTORY} documents")
    root = anchor
    best: KeyList | None = None
    floor = version
    for doc in history:
        if not isinstance(doc, bytes):
            raise KeyChainError("the hub's key history holds something that is not a document")
        header = peek_header(doc)
        if header.get("signer_key") != key_id(root) or header.get("signer") != hub_id:
            continue  # signed off our path (an earlier root, another branch): not ours to trust
        kind = header.get("kind")
        if kind == ROOT_KIND:
            change = _open_root(doc, root)
            if change.hub_id != hub_id or change.prev != root:
                raise KeyChainError("a root change names another hub or another previous root")
            root = change.root
            if best is not None:  # lists signed by the old root still count as versions seen
                floor, best = max(floor, best.version), None
        elif kind == KEYS_KIND:
            body = _open_keys(doc, root)
            if body.hub_id != hub_id or body.root != root:
                raise KeyChainError("a key list names another hub or another root")
            listed = KeyList(root, body.version, body.sign, body.seal, body.issued_ms, body.expires_ms)
            if listed.version > floor and (best is None or listed.version > best.version):
                best = listed
    return root, best


def listed_sign_keys(history: Sequence[bytes], *, hub_id: str, anchor: bytes) -> list[bytes]:
    """Every online signing key named by a list on the path from `anchor`, oldest first. The hub uses
    it to recognise what one of its own earlier keys signed (a release in a database restored from a
    backup taken before a rotation) and sign it again with the current key."""
    found: list[bytes] = []
    root = anchor
    for doc in history[:MAX_HISTORY]:
        header = peek_header(doc)
        if header.get("signer_key") != key_id(root) or header.get("signer") != hub_id:
            continue
        if header.get("kind") == ROOT_KIND:
            root = _open_root(doc, root).root
        elif header.get("kind") == KEYS_KIND:
            sign = _open_keys(doc, root).sign
            if sign not in found:
                found.append(sign)
    return found


def check_current(keys: KeyList, now_ms: int) -> None:
    """Refuse a list past its expiry: its keys are no longer vouched for by the root."""
    if now_ms > keys.expires_ms:
        raise KeyChainError(
            "区局密钥清单已过期，请联系区局更新密钥后再同步 (the hub's key list expired; the district "
            "must renew it with `sanji hub rotate-key`, then sync again)"
        )


__all__ = [
    "KEYS_KIND",
    "KEYS_MAGIC",
    "ROOT_KIND",
    "KeyChainError",
    "KeyList",
    "check_current",
    "fingerprint",
    "fingerprint_chars",
    "follow",
    "listed_sign_keys",
    "sign_key_list",
    "sign_root_change",
]
