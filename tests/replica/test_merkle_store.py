"""Kept leaves give the very tree a full build gives (issue 20): the same digests at every node and the
same records in every bucket, after adding, changing and removing leaves, at any depth asked for."""

from __future__ import annotations

import hashlib
import random
import sqlite3

import pytest
import sqlite_utils

from replica.merkle_store import LeafStore, migrations
from sync.merkle import MerkleTree, ReconcileSession, answer


def _leaf(i: int, version: int) -> bytes:
    return hashlib.sha256(f"{i}/{version}".encode()).digest()


def _same(kept: MerkleTree, built: MerkleTree) -> None:
    assert kept.root() == built.root() and len(kept) == len(built)
    for prefix in ("", "0", "a", "f3"[: kept.depth]):
        assert kept.digest(prefix) == built.digest(prefix)
        if len(prefix) < kept.depth:
            assert kept.children(prefix) == built.children(prefix)
        assert kept.keys_in(prefix) == built.keys_in(prefix)


@pytest.mark.parametrize("seed", range(5))
def test_a_kept_tree_is_the_tree_built_from_its_records(seed: int) -> None:
    rng = random.Random(seed)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrations.apply(sqlite_utils.Database(conn))
    store, other = LeafStore(conn, "station:A"), LeafStore(conn, "station:B")
    held: dict[str, bytes] = {}
    other.put({"application:x": _leaf(0, 0)})  # another scope's leaves never leak into this one
    for step in range(6):
        change: dict[str, bytes | None] = {}
        for _ in range(rng.randrange(1, 400)):
            key = f"application:{rng.randrange(600)}"
            roll = rng.random()
            change[key] = None if roll < 0.1 else _leaf(rng.randrange(600), step)
        store.put(change)
        held.update({k: v for k, v in change.items() if v is not None})
        for k in [k for k, v in change.items() if v is None]:
            held.pop(k, None)
        depth = rng.choice([1, 2, 3])
        _same(store.tree(depth), MerkleTree.build(sorted(held.items()), depth))
    assert store.count() == len(held)
    store.reset()
    assert store.count() == 0 and store.tree(2).root() == MerkleTree.build([], 2).root()
    assert other.count() == 1


def test_a_session_against_a_kept_tree_finds_exactly_what_differs() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrations.apply(sqlite_utils.Database(conn))
    here, there = LeafStore(conn, "here"), LeafStore(conn, "there")
    here.put({f"r:{i}": _leaf(i, 0) for i in range(3000)})
    there.put({f"r:{i}": _leaf(i, 0) for i in range(3000)})
    here.tree(2), there.tree(2)  # kept from an earlier night
    here.put({"r:7": _leaf(7, 1), "r:9000": _leaf(9000, 0)})
    there.put({"r:12": None})
    session = ReconcileSession(here.tree(2))
    request: dict[str, object] | None = session.first_request()
    tree = there.tree(2)
    while request is not None:
        request = session.receive(answer(tree, request))
    result = session.result()
    assert (result.differing, result.missing_there, result.missing_here) == (["r:7"], ["r:12", "r:9000"], [])
