"""A scope's Merkle leaves and bucket digests kept in SQLite, so a reconciliation rebuilds only what
changed since the last one.

Building a tree from a million records' changes (a digest per change, a leaf per record, the records
sorted into buckets) took seven seconds a side. Here each scope (the station's whole log on a node; one
station's scope on the hub) keeps:
- ``merkle_leaves``: every record's leaf and its key point (``sync.merkle_digest.key_point``);
- ``merkle_buckets``: the digest of every non-empty bucket, for each depth a tree was asked for;
- ``merkle_marks``: how far the log has been read into them (the caller's mark, packed).
A tree is then the stored bucket digests with the levels above computed (:meth:`LeafStore.tree`); a
bucket's records are read only when the other side's digest for it differs. :meth:`LeafStore.put`
writes new leaves and recomputes the digests of the buckets they fall in, at every depth kept.

What counts as changed is the caller's business (``hub/scope_leaves.py``, ``node/scope_leaves.py``):
anything that alters the log other than appending to it must :meth:`LeafStore.reset` the scope.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping

import sqlite_utils
from sqlite_utils import Migrations

from protocol.codec import pack, unpack
from sync.merkle import MerkleTree
from sync.merkle_digest import POINT_BITS, bucket_digest, bucket_range, key_point, levels_above

Record = tuple[str, bytes]
KEEP_DEPTHS = 2  # depths kept per scope: the one asked for now, and the one before it


# Applied by both stores at open (hub/store.py, node/store.py), after the replica's own set.
migrations = Migrations("sanji.replica.merkle")


@migrations()
def m201_merkle_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE merkle_leaves (scope TEXT NOT NULL, key TEXT NOT NULL, point INTEGER NOT NULL,"
        " leaf BLOB NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX merkle_leaves_point ON merkle_leaves(scope, point, key)")
    db.execute(
        "CREATE TABLE merkle_buckets (scope TEXT NOT NULL, depth INTEGER NOT NULL, bucket INTEGER NOT NULL,"
        " digest BLOB NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (scope, depth, bucket)) WITHOUT ROWID"
    )
    db.execute("CREATE TABLE merkle_marks (scope TEXT PRIMARY KEY, mark BLOB NOT NULL)")


class _Buckets(Mapping[int, list[Record]]):
    """A tree's buckets, each read from the leaves when the tree is asked for it."""

    def __init__(self, store: LeafStore, depth: int, held: Iterable[int]) -> None:
        self._store, self._depth, self._held = store, depth, frozenset(held)

    def __getitem__(self, bucket: int) -> list[Record]:
        if bucket not in self._held:
            raise KeyError(bucket)
        return self._store.records_in(bucket, self._depth)

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._held))

    def __len__(self) -> int:
        return len(self._held)


class LeafStore:
    """One scope's leaves and bucket digests. Writes expect the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection, scope: str) -> None:
        self.conn, self.scope = conn, scope

    def mark(self) -> object:
        row = self.conn.execute("SELECT mark FROM merkle_marks WHERE scope=?", (self.scope,)).fetchone()
        return None if row is None else unpack(bytes(row[0]))

    def set_mark(self, mark: object) -> None:
        self.conn.execute(
            "INSERT INTO merkle_marks (scope, mark) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET mark=excluded.mark",
            (self.scope, pack(mark)),
        )

    def reset(self) -> None:
        """Forget the scope: the next reconciliation reads it whole again."""
        for table in ("merkle_leaves", "merkle_buckets", "merkle_marks"):
            self.conn.execute(f"DELETE FROM {table} WHERE scope=?", (self.scope,))

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM merkle_leaves WHERE scope=?", (self.scope,)).fetchone()[0])

    def put(self, leaves: Mapping[str, bytes | None]) -> None:
        """Set (or, for None, remove) these records' leaves and recompute the buckets they fall in."""
        points = {key: key_point(key) for key in leaves}
        self.conn.executemany(
            "DELETE FROM merkle_leaves WHERE scope=? AND key=?",
            [(self.scope, k) for k, v in leaves.items() if v is None],
        )
        self.conn.executemany(
            "INSERT INTO merkle_leaves (scope, key, point, leaf) VALUES (?,?,?,?)"
            " ON CONFLICT (scope, key) DO UPDATE SET point=excluded.point, leaf=excluded.leaf",
            [(self.scope, k, points[k], v) for k, v in leaves.items() if v is not None],
        )
        for (depth,) in self.conn.execute(
            "SELECT DISTINCT depth FROM merkle_buckets WHERE scope=?", (self.scope,)
        ).fetchall():
            shift = POINT_BITS - 4 * int(depth)
            for bucket in {p >> shift for p in points.values()}:
                self._rebucket(bucket, int(depth))

    def records_in(self, bucket: int, depth: int) -> list[Record]:
        low, high = bucket_range(bucket, depth)
        rows = self.conn.execute(
            "SELECT key, leaf FROM merkle_leaves WHERE scope=? AND point >= ? AND point < ?",
            (self.scope, low, high),
        ).fetchall()
        return sorted((str(k), bytes(v)) for k, v in rows)

    def _rebucket(self, bucket: int, depth: int) -> None:
        records = self.records_in(bucket, depth)
        if records:
            self.conn.execute(
                "INSERT INTO merkle_buckets (scope, depth, bucket, digest, count) VALUES (?,?,?,?,?)"
                " ON CONFLICT (scope, depth, bucket) DO UPDATE SET digest=excluded.digest, count=excluded.count",
                (self.scope, depth, bucket, bucket_digest(records), len(records)),
            )
        else:
            self.conn.execute(
                "DELETE FROM merkle_buckets WHERE scope=? AND depth=? AND bucket=?", (self.scope, depth, bucket)
            )

    def _build_depth(self, depth: int) -> None:
        """Every bucket's digest at ``depth``, from the leaves in key-point order (once per depth)."""
        shift = POINT_BITS - 4 * depth
        rows = self.conn.execute(
            "SELECT point, key, leaf FROM merkle_leaves WHERE scope=? ORDER BY point", (self.scope,)
        )
        out: list[tuple[str, int, int, bytes, int]] = []
        current, records = -1, []
        for point, key, leaf in [*rows, (None, "", b"")]:
            bucket = -2 if point is None else int(point) >> shift
            if bucket != current:
                if records:
                    records.sort()
                    out.append((self.scope, depth, current, bucket_digest(records), len(records)))
                current, records = bucket, []
            records.append((str(key), bytes(leaf)))
        kept = [
            int(d)
            for (d,) in self.conn.execute(
                "SELECT DISTINCT depth FROM merkle_buckets WHERE scope=? ORDER BY depth", (self.scope,)
            )
        ]
        for old in kept[: max(0, len(kept) - KEEP_DEPTHS + 1)]:
            self.conn.execute("DELETE FROM merkle_buckets WHERE scope=? AND depth=?", (self.scope, old))
        self.conn.executemany(
            "INSERT INTO merkle_buckets (scope, depth, bucket, digest, count) VALUES (?,?,?,?,?)", out
        )

    def tree(self, depth: int) -> MerkleTree:
        """The scope's tree at ``depth`` (call inside a transaction: a first tree at a depth writes its
        bucket digests)."""
        q = "SELECT bucket, digest, count FROM merkle_buckets WHERE scope=? AND depth=?"
        rows = self.conn.execute(q, (self.scope, depth)).fetchall()
        if not rows and self.count():
            self._build_depth(depth)
            rows = self.conn.execute(q, (self.scope, depth)).fetchall()
        digests = {int(b): bytes(d) for b, d, _ in rows}
        count = sum(int(n) for _, _, n in rows)
        return MerkleTree(depth, _Buckets(self, depth, digests), levels_above(depth, digests), count)


__all__ = ["KEEP_DEPTHS", "LeafStore", "migrations"]
