"""Merkle digests of a station's scope, and the sans-I/O session that compares two of them.

Nightly anti-entropy must cost bytes in proportion to what differs, not to how much a station holds: a village link
may carry a few kilobytes a second. So both sides hash their records into the same fixed-shape tree and the node
walks down from the root, asking the hub only about subtrees whose digests disagree, until it reaches buckets small
enough to compare record by record.

Shape. A record is ``(key, leaf)``: ``leaf`` is a digest of the record's full state, computed by the caller. The
record's bucket is given by the first ``depth`` hex digits of ``sha256(key)``, so keys spread evenly whatever their
format. The tree has fanout 16; a node is named by a lowercase hex prefix of length ``0..depth`` (``""`` is the
root, ``"a3"`` child 3 of child 10 of the root), and the full-depth nodes are the buckets.

Digests. An empty subtree, at any level, has digest :data:`EMPTY_DIGEST`, so a subtree one side lacks compares as
different from one the other side has without further special cases. A bucket's digest hashes its records sorted by
key, length-prefixed; an inner node's digest hashes its 16 child digests in child order. Distinct tags keep bucket
and node inputs from ever being confused.

Wire. Requests and responses are plain maps of str, bytes, int and lists, ready for msgpack. Node digests travel
truncated to :data:`WIRE_DIGEST_BYTES` (16) bytes: 128 bits keeps accidental collisions out of reach while halving
the traffic. Both peers must build their trees with the depth the request names; the responder learns it with
:func:`request_depth` before building.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from protocol.errors import SanjiError
from sync.merkle_digest import EMPTY_DIGEST, FANOUT, _key_point, bucket_digest, levels_above

DEFAULT_DEPTH: Final = 4
# sha256 gives 64 hex digits, but beyond 8 levels (4 billion buckets) a tree would be all overhead.
MAX_DEPTH: Final = 8
# depth_for aims at an average bucket of at most this many records: large enough that the tree stays
# small, small enough that shipping a differing bucket whole stays cheap.
TARGET_BUCKET_RECORDS: Final = 32
WIRE_DIGEST_BYTES: Final = 16
WIRE_VERSION: Final = 1
# Bounds a single request's work on the responder, whoever sent it.
MAX_REQUEST_ITEMS: Final = 256

_EMPTY_WIRE: Final = EMPTY_DIGEST[:WIRE_DIGEST_BYTES]
_HEX: Final = frozenset("0123456789abcdef")

Record = tuple[str, bytes]
_T = TypeVar("_T")


class ReconcileError(SanjiError, ValueError):  # a ValueError too, as callers caught it before SanjiError
    """A reconciliation message from the peer is malformed or does not match the conversation."""

    default_code = "malformed_reconcile"


def depth_for(count: int) -> int:
    """The shallowest depth (at least 1) at which ``count`` records average at most 32 per bucket."""
    if count < 0:
        raise ValueError("record count must not be negative")
    depth = 1
    while depth < MAX_DEPTH and count > TARGET_BUCKET_RECORDS * FANOUT**depth:
        depth += 1
    return depth


def _check_depth(depth: int) -> None:
    if not 0 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be in 0..{MAX_DEPTH}, not {depth}")


def bucket_of(key: str, depth: int) -> str:
    """The prefix of the bucket ``key`` falls in, in a tree of ``depth`` levels."""
    _check_depth(depth)
    return f"{_key_point(key):064x}"[:depth]


def _is_prefix(value: object, max_len: int) -> bool:
    return isinstance(value, str) and len(value) <= max_len and _HEX.issuperset(value)


class MerkleTree:
    """An immutable digest tree over a set of records; build it with :meth:`build`."""

    def __init__(
        self, depth: int, buckets: Mapping[int, list[Record]], levels: list[dict[int, bytes]], count: int | None = None
    ):
        self._depth = depth
        self._buckets = buckets  # may load a bucket when asked for it (replica/merkle_store.py)
        # levels[d] maps the index of each non-empty node at level d to its full digest.
        self._levels = levels
        self._count = sum(len(b) for b in buckets.values()) if count is None else count

    @classmethod
    def build(cls, records: Iterable[tuple[str, bytes]], depth: int = DEFAULT_DEPTH) -> MerkleTree:
        _check_depth(depth)
        shift = 256 - 4 * depth
        buckets: dict[int, list[Record]] = {}
        seen: set[str] = set()
        for key, leaf in records:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}: a scope holds each record once")
            seen.add(key)
            index = _key_point(key) >> shift
            buckets.setdefault(index, []).append((key, bytes(leaf)))
        for bucket in buckets.values():
            bucket.sort()
        return cls(depth, buckets, levels_above(depth, {i: bucket_digest(b) for i, b in buckets.items()}))

    @property
    def depth(self) -> int:
        return self._depth

    def __len__(self) -> int:
        return self._count

    def _locate(self, prefix: str) -> tuple[int, int]:
        if not _is_prefix(prefix, self._depth):
            raise ValueError(f"{prefix!r} is not a lowercase hex prefix of at most {self._depth} digits")
        return len(prefix), int(prefix, 16) if prefix else 0

    def root(self) -> bytes:
        return self._levels[0].get(0, EMPTY_DIGEST)

    def digest(self, prefix: str) -> bytes:
        level, index = self._locate(prefix)
        return self._levels[level].get(index, EMPTY_DIGEST)

    def digests(self, prefixes: Iterable[str]) -> dict[str, bytes]:
        """Full digests of the named nodes; an empty node gives :data:`EMPTY_DIGEST`."""
        return {prefix: self.digest(prefix) for prefix in prefixes}

    def children(self, prefix: str) -> dict[str, bytes]:
        """Digests of the non-empty children of an inner node, keyed by child prefix.

        Empty children are omitted; a child absent from the result has digest :data:`EMPTY_DIGEST`.
        """
        level, index = self._locate(prefix)
        if level == self._depth:
            raise ValueError(f"{prefix!r} is a bucket and has no children")
        below = self._levels[level + 1]
        result: dict[str, bytes] = {}
        for i in range(FANOUT):
            digest = below.get((index << 4) | i)
            if digest is not None:
                result[f"{prefix}{i:x}"] = digest
        return result

    def keys_in(self, prefix: str) -> list[tuple[str, bytes]]:
        """The records under a node, sorted by key. Meant for buckets; an inner node walks its buckets."""
        level, index = self._locate(prefix)
        if level == self._depth:
            return list(self._buckets.get(index, ()))
        shift, held = 4 * (self._depth - level), self._levels[self._depth]
        below = range(index << shift, (index + 1) << shift)
        found = [record for b in below if b in held for record in self._buckets.get(b, ())]
        return sorted(found)


def _prefix_list(request: Mapping[str, object], name: str, lengths: range) -> list[str]:
    value = request.get(name, [])
    if not isinstance(value, list) or len(value) > MAX_REQUEST_ITEMS:
        raise ReconcileError(f"{name} must be a list of at most {MAX_REQUEST_ITEMS} prefixes")
    for item in value:
        if not _is_prefix(item, lengths.stop - 1) or len(item) not in lengths:
            raise ReconcileError(f"{name} holds an invalid prefix {item!r}")
    return value


def _as_request(request: object) -> tuple[Mapping[str, object], int]:
    if not isinstance(request, dict) or request.get("v") != WIRE_VERSION:
        raise ReconcileError(f"a reconcile request must be a map with v={WIRE_VERSION}")
    depth = request.get("depth")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_DEPTH:
        raise ReconcileError(f"request depth must be an integer in 0..{MAX_DEPTH}")
    return request, depth


def request_depth(request: object) -> int:
    """The tree depth a request expects, so the responder can build a matching tree."""
    return _as_request(request)[1]


def _children_blob(tree: MerkleTree, prefix: str) -> bytes:
    kids = tree.children(prefix)
    return b"".join(kids.get(f"{prefix}{i:x}", EMPTY_DIGEST)[:WIRE_DIGEST_BYTES] for i in range(FANOUT))


def answer(tree: MerkleTree, request: object) -> dict[str, object]:
    """Answer one request of a :class:`ReconcileSession` from our own tree.

    Request: ``{"v", "depth", "digests": [prefix], "children": [prefix], "buckets": [prefix]}``.
    Response: ``{"v", "digests": [digest16], "children": [blob], "buckets": [[[key, leaf], ...]]}``,
    each list in request order. A ``children`` blob is the 16 child digests, truncated, concatenated
    in child order (an empty child is 16 zero bytes), so a node costs 256 bytes whatever it holds.
    """
    message, depth = _as_request(request)
    if depth != tree.depth:
        raise ReconcileError(f"request is for depth {depth} but this tree has depth {tree.depth}")
    digests = _prefix_list(message, "digests", range(depth + 1))
    parents = _prefix_list(message, "children", range(depth))
    buckets = _prefix_list(message, "buckets", range(depth, depth + 1))
    return {
        "v": WIRE_VERSION,
        "digests": [tree.digest(prefix)[:WIRE_DIGEST_BYTES] for prefix in digests],
        "children": [_children_blob(tree, prefix) for prefix in parents],
        "buckets": [[[key, leaf] for key, leaf in tree.keys_in(prefix)] for prefix in buckets],
    }


@dataclass(frozen=True)
class ReconcileResult:
    """What differs between the initiator ("here") and the responder ("there").

    The three key lists are disjoint and sorted: keys only the responder has, keys only we have, and
    keys both have with different leaves (which side is newer is for the fold to decide, so both
    sides send theirs).
    """

    missing_here: list[str]
    missing_there: list[str]
    differing: list[str]
    buckets_compared: int
    rounds: int


@dataclass
class _Pending:
    digests: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)


class ReconcileSession:
    """The node's side of a digest comparison, as a state machine with no I/O.

    Send :meth:`first_request`, feed each response to :meth:`receive` and send what it returns until
    it returns ``None``; then read :meth:`result`. Each request names at most ``max_nodes`` inner nodes
    and ``max_buckets`` buckets, which bounds every message's size regardless of how much differs.
    """

    def __init__(self, tree: MerkleTree, *, max_nodes: int = 64, max_buckets: int = 16) -> None:
        if not 1 <= max_nodes <= MAX_REQUEST_ITEMS or not 1 <= max_buckets <= MAX_REQUEST_ITEMS:
            raise ValueError(f"batch limits must be in 1..{MAX_REQUEST_ITEMS}")
        self._tree = tree
        self._max_nodes = max_nodes
        self._max_buckets = max_buckets
        self._to_expand: list[str] = []
        self._to_fetch: list[str] = []
        self._sent: _Pending | None = None
        self._done = False
        self._missing_here: set[str] = set()
        self._missing_there: set[str] = set()
        self._differing: set[str] = set()
        self._buckets_compared = 0
        self._rounds = 0

    def first_request(self) -> dict[str, object]:
        if self._sent is not None or self._done:
            raise ValueError("the session has already started")
        return self._send(_Pending(digests=[""]))

    def receive(self, response: object) -> dict[str, object] | None:
        """Take the responder's answer to the last request; return the next request, or None when done."""
        sent = self._sent
        if sent is None:
            raise ValueError("no request is awaiting a response")
        if not isinstance(response, dict) or response.get("v") != WIRE_VERSION:
            raise ReconcileError(f"a reconcile response must be a map with v={WIRE_VERSION}")
        digests = _answers(response, "digests", len(sent.digests), bytes)
        blobs = _answers(response, "children", len(sent.children), bytes)
        buckets = _answers(response, "buckets", len(sent.buckets), list)
        self._rounds += 1
        for prefix, theirs in zip(sent.digests, digests, strict=True):
            if len(theirs) != WIRE_DIGEST_BYTES:
                raise ReconcileError("a node digest has the wrong length")
            self._compare_node(prefix, theirs)
        for parent, blob in zip(sent.children, blobs, strict=True):
            if len(blob) != FANOUT * WIRE_DIGEST_BYTES:
                raise ReconcileError("a children blob has the wrong length")
            for i in range(FANOUT):
                chunk = blob[i * WIRE_DIGEST_BYTES : (i + 1) * WIRE_DIGEST_BYTES]
                self._compare_node(f"{parent}{i:x}", chunk)
        for prefix, records in zip(sent.buckets, buckets, strict=True):
            self._compare_bucket(prefix, _records(records))
        nodes, self._to_expand = self._to_expand[: self._max_nodes], self._to_expand[self._max_nodes :]
        fetch, self._to_fetch = self._to_fetch[: self._max_buckets], self._to_fetch[self._max_buckets :]
        if not nodes and not fetch:
            self._sent = None
            self._done = True
            return None
        return self._send(_Pending(children=nodes, buckets=fetch))

    def result(self) -> ReconcileResult:
        if not self._done:
            raise ValueError("the session has not finished")
        return ReconcileResult(
            missing_here=sorted(self._missing_here),
            missing_there=sorted(self._missing_there),
            differing=sorted(self._differing),
            buckets_compared=self._buckets_compared,
            rounds=self._rounds,
        )

    def _send(self, pending: _Pending) -> dict[str, object]:
        self._sent = pending
        return {
            "v": WIRE_VERSION,
            "depth": self._tree.depth,
            "digests": pending.digests,
            "children": pending.children,
            "buckets": pending.buckets,
        }

    def _compare_node(self, prefix: str, theirs: bytes) -> None:
        ours = self._tree.digest(prefix)[:WIRE_DIGEST_BYTES]
        if ours == theirs:
            return
        if theirs == _EMPTY_WIRE:
            # Nothing to ask for: everything we hold under this node is missing there.
            self._missing_there.update(key for key, _ in self._tree.keys_in(prefix))
        elif len(prefix) == self._tree.depth:
            self._to_fetch.append(prefix)
        else:
            # Descend even when our side is empty: no single response need carry a whole subtree's records.
            self._to_expand.append(prefix)

    def _compare_bucket(self, prefix: str, theirs: list[Record]) -> None:
        self._buckets_compared += 1
        ours = dict(self._tree.keys_in(prefix))
        there = dict(theirs)
        if len(there) != len(theirs):
            raise ReconcileError(f"bucket {prefix!r} repeats a key")
        depth = self._tree.depth
        # A key filed under the wrong bucket would otherwise be reported missing here forever.
        if any(bucket_of(key, depth) != prefix for key in there):
            raise ReconcileError(f"bucket {prefix!r} holds a key that does not belong to it")
        for key, leaf in there.items():
            mine = ours.get(key)
            if mine is None:
                self._missing_here.add(key)
            elif mine != leaf:
                self._differing.add(key)
        self._missing_there.update(key for key in ours if key not in there)


def _answers(response: Mapping[str, object], name: str, count: int, kind: type[_T]) -> list[_T]:
    value = response.get(name)
    if not isinstance(value, list) or len(value) != count:
        raise ReconcileError(f"response {name} must be a list of {count} entries")
    if not all(isinstance(item, kind) for item in value):
        raise ReconcileError(f"response {name} holds an entry of the wrong type")
    return value


def _records(value: list[object]) -> list[Record]:
    records: list[Record] = []
    for item in value:
        if (
            not isinstance(item, list | tuple)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], bytes)
        ):
            raise ReconcileError("a bucket entry must be a [key, leaf] pair")
        records.append((item[0], item[1]))
    return records
