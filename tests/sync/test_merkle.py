from __future__ import annotations

import hashlib
import time

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.merkle import (
    DEFAULT_DEPTH,
    EMPTY_DIGEST,
    WIRE_DIGEST_BYTES,
    MerkleTree,
    ReconcileError,
    ReconcileResult,
    ReconcileSession,
    answer,
    bucket_of,
    depth_for,
    request_depth,
)


def leaf(value: object) -> bytes:
    return hashlib.sha256(repr(value).encode()).digest()


def run(
    here: MerkleTree, there: MerkleTree, *, max_nodes: int = 64, max_buckets: int = 16
) -> tuple[ReconcileResult, int]:
    """Drive a session through msgpack both ways, as the real transport would; return total bytes."""
    session = ReconcileSession(here, max_nodes=max_nodes, max_buckets=max_buckets)
    request: dict[str, object] | None = session.first_request()
    total = 0
    while request is not None:
        wire = msgpack.packb(request)
        total += len(wire)
        response = answer(there, msgpack.unpackb(wire))
        wire = msgpack.packb(response)
        total += len(wire)
        request = session.receive(msgpack.unpackb(wire))
    return session.result(), total


def brute_force(here: dict[str, bytes], there: dict[str, bytes]) -> tuple[list[str], list[str], list[str]]:
    missing_here = sorted(there.keys() - here.keys())
    missing_there = sorted(here.keys() - there.keys())
    differing = sorted(k for k in here.keys() & there.keys() if here[k] != there[k])
    return missing_here, missing_there, differing


# --- The tree ------------------------------------------------------------------------------------


def test_empty_tree_has_the_empty_digest_everywhere() -> None:
    tree = MerkleTree.build([], 2)
    assert tree.root() == EMPTY_DIGEST
    assert tree.digests(["", "a", "ff"]) == {"": EMPTY_DIGEST, "a": EMPTY_DIGEST, "ff": EMPTY_DIGEST}
    assert tree.children("") == {}
    assert tree.keys_in("3c") == []
    assert len(tree) == 0
    assert MerkleTree.build([]).depth == DEFAULT_DEPTH


@given(
    st.dictionaries(st.text(max_size=12), st.binary(min_size=1, max_size=8), max_size=60).flatmap(
        lambda d: st.tuples(st.just(list(d.items())), st.permutations(list(d.items())))
    ),
    st.integers(min_value=0, max_value=3),
)
def test_root_depends_on_the_set_not_the_order(
    orders: tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]], depth: int
) -> None:
    items, shuffled = orders
    a = MerkleTree.build(items, depth)
    b = MerkleTree.build(shuffled, depth)
    assert a.root() == b.root()
    assert (a.root() == EMPTY_DIGEST) == (not items)
    assert sorted(a.keys_in("")) == sorted(items)


def test_structure_and_navigation() -> None:
    records = [(f"k{i}", leaf(i)) for i in range(300)]
    tree = MerkleTree.build(records, 2)
    assert len(tree) == 300
    # Every record sits in the bucket its key hashes to, and each bucket is sorted.
    for key, value in records:
        assert (key, value) in tree.keys_in(bucket_of(key, 2))
    for a in "0123456789abcdef":
        kids = tree.children(a)
        assert all(len(p) == 2 and p.startswith(a) for p in kids)
        assert all(d != EMPTY_DIGEST for d in kids.values())
        assert tree.digests(kids) == kids
        under = tree.keys_in(a)
        assert under == sorted(r for p in kids for r in tree.keys_in(p))
        for p in kids:
            assert tree.keys_in(p) == sorted(tree.keys_in(p))
    assert set(tree.children("")) == {f"{i:x}" for i in range(16)}


def test_node_digest_is_the_hash_of_its_children_in_order() -> None:
    tree = MerkleTree.build([(f"k{i}", leaf(i)) for i in range(5)], 1)
    kids = tree.children("")
    joined = b"".join(kids.get(f"{i:x}", EMPTY_DIGEST) for i in range(16))
    assert tree.root() == hashlib.sha256(b"sanji/merkle/node\x00" + joined).digest()


def test_changing_one_leaf_changes_exactly_its_path() -> None:
    records = {f"k{i}": leaf(i) for i in range(200)}
    before = MerkleTree.build(records.items(), 2)
    records["k7"] = leaf("edited")
    after = MerkleTree.build(records.items(), 2)
    path = bucket_of("k7", 2)
    for prefix in ["", *(f"{i:x}" for i in range(16)), *(f"{i:02x}" for i in range(256))]:
        assert (before.digest(prefix) != after.digest(prefix)) == path.startswith(prefix)


@pytest.mark.parametrize("prefix", ["A", "g", "123", " ", "0x"])
def test_rejects_bad_prefixes(prefix: str) -> None:
    tree = MerkleTree.build([("a", b"x")], 2)
    with pytest.raises(ValueError):
        tree.digest(prefix)


def test_rejects_duplicate_keys_and_bad_depth() -> None:
    with pytest.raises(ValueError):
        MerkleTree.build([("a", b"1"), ("a", b"2")], 2)
    with pytest.raises(ValueError):
        MerkleTree.build([], 9)
    with pytest.raises(ValueError):
        MerkleTree.build([("a", b"1")], 1).children("0")


@pytest.mark.parametrize(
    ("count", "depth"),
    [(0, 1), (512, 1), (513, 2), (8192, 2), (8193, 3), (100_000, 3), (2_000_000, 4), (10**12, 8)],
)
def test_depth_for(count: int, depth: int) -> None:
    assert depth_for(count) == depth


# --- Reconciliation -----------------------------------------------------------------------------

keys = st.text(alphabet="abcdefghij0123456789:-", min_size=1, max_size=10)
leaves = st.binary(min_size=1, max_size=4)
edits = st.lists(st.tuples(st.sampled_from(["insert", "delete", "change"]), keys, leaves, st.booleans()), max_size=25)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(keys, leaves, max_size=150),
    edits,
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=4),
)
def test_reconcile_finds_exactly_the_differences(
    base: dict[str, bytes],
    changes: list[tuple[str, str, bytes, bool]],
    depth: int,
    max_nodes: int,
    max_buckets: int,
) -> None:
    here, there = dict(base), dict(base)
    existing = sorted(base)
    for n, (op, key, value, on_here) in enumerate(changes):
        side = here if on_here else there
        if op == "insert":
            side[key] = value
        elif existing:
            victim = existing[(len(key) + n) % len(existing)]
            if op == "delete":
                side.pop(victim, None)
            else:
                side[victim] = value + b"!"
    result, _ = run(
        MerkleTree.build(here.items(), depth),
        MerkleTree.build(there.items(), depth),
        max_nodes=max_nodes,
        max_buckets=max_buckets,
    )
    assert (result.missing_here, result.missing_there, result.differing) == brute_force(here, there)
    if here == there:
        assert result.rounds == 1
        assert result.buckets_compared == 0


@given(st.dictionaries(keys, leaves, max_size=100), st.integers(min_value=0, max_value=3))
def test_identical_sets_finish_in_one_round(records: dict[str, bytes], depth: int) -> None:
    tree = MerkleTree.build(records.items(), depth)
    result, _ = run(tree, MerkleTree.build(records.items(), depth))
    assert result == ReconcileResult([], [], [], buckets_compared=0, rounds=1)


def test_one_side_empty() -> None:
    full = MerkleTree.build([(f"k{i}", leaf(i)) for i in range(1000)], 2)
    empty = MerkleTree.build([], 2)
    pulled, _ = run(empty, full, max_nodes=4, max_buckets=8)
    assert pulled.missing_here == sorted(f"k{i}" for i in range(1000))
    assert pulled.missing_there == [] and pulled.differing == []
    pushed, pushed_bytes = run(full, empty)
    assert pushed.missing_there == sorted(f"k{i}" for i in range(1000))
    # Our side is the one with data: a single round settles it without shipping records.
    assert pushed.rounds == 1 and pushed_bytes < 100


def test_large_scope_with_few_differences_exchanges_little(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    records = {f"application:{i:07d}": leaf(i) for i in range(100_000)}
    depth = depth_for(len(records))
    hub_records = dict(records)
    for i in (11, 2_222, 33_333, 44_444):
        hub_records[f"application:{i:07d}"] = leaf(("changed", i))
    for i in (5, 50_005, 99_999):
        del hub_records[f"application:{i:07d}"]
    for i in (200_000, 200_001, 200_002):
        hub_records[f"application:{i:07d}"] = leaf(i)
    node = MerkleTree.build(records.items(), depth)
    hub = MerkleTree.build(hub_records.items(), depth)
    result, total = run(node, hub)
    elapsed = time.perf_counter() - started
    assert (result.missing_here, result.missing_there, result.differing) == brute_force(records, hub_records)
    assert len(result.missing_here) + len(result.missing_there) + len(result.differing) == 10
    assert total < 64 * 1024
    # The root, one round per inner level, then the buckets.
    assert result.rounds == depth + 2
    with capsys.disabled():
        print(f"\n100k records, 10 differences: {total} bytes, {result.rounds} rounds, {elapsed:.2f}s")


# --- Wire hygiene -------------------------------------------------------------------------------


def test_wire_digests_are_truncated() -> None:
    tree = MerkleTree.build([("a", b"1"), ("b", b"2")], 1)
    session = ReconcileSession(tree)
    response = answer(tree, session.first_request())
    assert response["digests"] == [tree.root()[:WIRE_DIGEST_BYTES]]
    resp = answer(tree, {"v": 1, "depth": 1, "digests": [], "children": [""], "buckets": []})
    assert resp["children"] == [b"".join(tree.digest(f"{i:x}")[:WIRE_DIGEST_BYTES] for i in range(16))]


@pytest.mark.parametrize(
    "request_",
    [
        None,
        {"v": 2, "depth": 2},
        {"v": 1, "depth": 3, "digests": [""]},
        {"v": 1, "depth": True, "digests": [""]},
        {"v": 1, "depth": 2, "digests": ["abc"]},
        {"v": 1, "depth": 2, "children": ["ab"]},
        {"v": 1, "depth": 2, "buckets": ["a"]},
        {"v": 1, "depth": 2, "digests": "a"},
        {"v": 1, "depth": 2, "digests": [""] * 257},
    ],
)
def test_answer_rejects_malformed_requests(request_: object) -> None:
    tree = MerkleTree.build([("a", b"1")], 2)
    with pytest.raises(ReconcileError):
        answer(tree, request_)


def test_request_depth_lets_the_responder_build_a_matching_tree() -> None:
    node = MerkleTree.build([("a", b"1")], 3)
    assert request_depth(ReconcileSession(node).first_request()) == 3


def test_receive_rejects_malformed_responses() -> None:
    here = MerkleTree.build([("a", b"1")], 1)
    session = ReconcileSession(here)
    session.first_request()
    for bad in [None, {"v": 1}, {"v": 1, "digests": [b"x"], "children": [], "buckets": []}]:
        with pytest.raises(ReconcileError):
            session.receive(bad)
    with pytest.raises(ValueError):
        session.result()


def test_receive_rejects_a_key_filed_in_the_wrong_bucket() -> None:
    here = MerkleTree.build([], 1)
    there = MerkleTree.build([("a", b"1")], 1)
    session = ReconcileSession(here)
    request = session.receive(answer(there, session.first_request()))
    request = session.receive(answer(there, request))
    assert request is not None
    buckets = request["buckets"]
    assert isinstance(buckets, list) and len(buckets) == 1
    prefix = buckets[0]
    wrong = next(k for k in (f"x{i}" for i in range(100)) if bucket_of(k, 1) != prefix)
    with pytest.raises(ReconcileError):
        session.receive({"v": 1, "digests": [], "children": [], "buckets": [[[wrong, b"1"]]]})


def test_receive_before_start_and_double_start() -> None:
    session = ReconcileSession(MerkleTree.build([], 1))
    with pytest.raises(ValueError):
        session.receive({"v": 1})
    session.first_request()
    with pytest.raises(ValueError):
        session.first_request()
