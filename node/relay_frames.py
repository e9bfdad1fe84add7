"""What a township's relay may read of a village's frame (its unauthenticated outer header and size),
and which stations are its villages: apart from the queue that holds the frames (node/relay_queue.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from protocol.codec import Limits, unpack
from protocol.frame import MAGIC, peek_header
from protocol.limits import FRAME_MAX_BYTES


@dataclass(frozen=True)
class Outer:
    """What the relay may know of a frame: its unauthenticated outer header, and its size."""

    origin: str
    kind: str
    hash: bytes
    epoch: int
    first_seq: int
    last_seq: int
    size: int


def outer(data: bytes) -> Outer:
    """The outer header of a frame, shape-checked (never trusted: the hub checks the signature)."""
    header = peek_header(data, max_bytes=FRAME_MAX_BYTES)
    parts = unpack(
        data[len(MAGIC) :],
        Limits(max_bytes=FRAME_MAX_BYTES, max_str=16, max_bin=FRAME_MAX_BYTES, max_array=4, max_map=1, max_depth=1),
    )
    header_bytes = parts[0] if isinstance(parts, list) and parts and isinstance(parts[0], bytes) else b""

    def num(name: str) -> int:
        value = header.get(name)
        return value if type(value) is int else 0

    return Outer(
        str(header.get("signer", "")),
        str(header.get("kind", "")),
        hashlib.sha256(header_bytes).digest(),
        num("epoch"),
        num("first_seq"),
        num("last_seq"),
        len(data),
    )


def is_village_of(township: str, origin: str) -> bool:
    """A village's code is its township's code and one more part (360802-T01 → 360802-T01-05)."""
    rest = origin[len(township) + 1 :] if origin.startswith(township + "-") else ""
    return bool(rest) and "-" not in rest
