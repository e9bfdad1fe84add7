"""How a Merkle tree's digests are made (``sync/merkle.py``): a bucket's from its records, a node's from
its 16 children, a key's place from its SHA-256. Apart from the tree so that a tree can also be put
together from bucket digests kept on disk (``replica/merkle_store.py``) and give the same digests as
one built from its records."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

FANOUT: Final = 16
EMPTY_DIGEST: Final = bytes(32)
_BUCKET_TAG: Final = b"sanji/merkle/bucket\x00"
_NODE_TAG: Final = b"sanji/merkle/node\x00"
POINT_BITS: Final = 32  # enough for MAX_DEPTH (8) hex digits


def bucket_digest(records: list[tuple[str, bytes]]) -> bytes:
    """A bucket's digest: its records, which must be sorted by key, length-prefixed."""
    h = hashlib.sha256(_BUCKET_TAG)
    for key, leaf in records:
        raw = key.encode("utf-8")
        h.update(len(raw).to_bytes(4, "big"))
        h.update(raw)
        h.update(len(leaf).to_bytes(4, "big"))
        h.update(leaf)
    return h.digest()


def node_digest(children: Mapping[int, bytes]) -> bytes:
    joined = b"".join(children.get(i, EMPTY_DIGEST) for i in range(FANOUT))
    return hashlib.sha256(_NODE_TAG + joined).digest()


def _key_point(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest(), "big")


def key_point(key: str) -> int:
    """Where a key falls: the first 32 bits of its SHA-256. Its bucket at depth d is the top 4·d bits."""
    return _key_point(key) >> (256 - POINT_BITS)


def bucket_range(bucket: int, depth: int) -> tuple[int, int]:
    """The key points ``[low, high)`` of a bucket at ``depth``."""
    shift = POINT_BITS - 4 * depth
    return bucket << shift, (bucket + 1) << shift


def levels_above(depth: int, buckets: Mapping[int, bytes]) -> list[dict[int, bytes]]:
    """Every level's non-empty node digests, from the digests of the non-empty buckets at ``depth``."""
    levels: list[dict[int, bytes]] = [{} for _ in range(depth + 1)]
    levels[depth] = dict(buckets)
    for level in range(depth, 0, -1):
        grouped: dict[int, dict[int, bytes]] = {}
        for index, digest in levels[level].items():
            grouped.setdefault(index >> 4, {})[index & 0xF] = digest
        levels[level - 1] = {parent: node_digest(kids) for parent, kids in grouped.items()}
    return levels
