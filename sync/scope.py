"""What anti-entropy compares: the changes each side holds for a station's scope, per record.

A record's leaf is a digest over the digests of every change to it that the station's scope holds,
in sorted order. Two replicas whose leaves agree for a record hold exactly the same changes for it,
and so (the fold depending only on the set) the same state. A change's digest is computed from its
identity and its canonically encoded fields and base, which both sides store byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from protocol.codec import pack
from sync.tracking import without_code

_CHANGE_TAG = b"sanji/change\x00"
_LEAF_TAG = b"sanji/leaf\x00"


def record_key(entity: str, rec_id: str) -> str:
    return f"{entity}:{rec_id}"


def change_digest(
    origin: str, epoch: int, seq: int, hlc: int, entity: str, rec_id: str, fields_packed: bytes, base_packed: bytes
) -> bytes:
    head = pack([origin, epoch, seq, hlc, entity, rec_id])
    if entity == "application":
        fields_packed = without_code(fields_packed)  # the station holds the citizen's code, the hub ""
    h = hashlib.sha256(_CHANGE_TAG)
    for part in (head, fields_packed, base_packed):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def record_leaf(change_digests: Iterable[bytes]) -> bytes:
    h = hashlib.sha256(_LEAF_TAG)
    for d in sorted(change_digests):
        h.update(d)
    return h.digest()


def leaves(rows: Iterable[tuple[str, str, bytes]]) -> list[tuple[str, bytes]]:
    """(entity, id, change digest) rows → sorted (record key, leaf) pairs for a Merkle tree."""
    grouped: dict[str, list[bytes]] = {}
    for entity, rec_id, digest in rows:
        grouped.setdefault(record_key(entity, rec_id), []).append(digest)
    return sorted((key, record_leaf(ds)) for key, ds in grouped.items())
