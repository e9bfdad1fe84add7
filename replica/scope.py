"""Reading a scope's changes out of SQLite for anti-entropy, the same way on node and hub.

A row carries the change's author last, so a repair re-sends a change with it; the digest leaves it
out (``sync/scope.py``): the fold and so the leaves depend on what a change writes, not on who.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from protocol.codec import pack, unpack
from sync.merkle import MerkleTree, depth_for
from sync.scope import change_digest, leaves, record_key

CHANGE_COLS = "c.origin, c.epoch, c.seq, c.hlc, c.entity, c.rid, c.fields, c.base, c.author"
Row = tuple[str, int, int, int, str, str, bytes, bytes, str]


def digests(rows: Iterable[Row]) -> Iterator[tuple[str, str, bytes]]:
    for r in rows:
        origin, epoch, seq, hlc, entity, rid, fields, base = r[:8]
        yield entity, rid, change_digest(origin, epoch, seq, hlc, entity, rid, bytes(fields), bytes(base))


def wire_rows(raws: Iterable[bytes]) -> Iterator[Row]:
    """Quarantined changes are kept as their packed wire form; give them the row shape."""
    for raw in raws:
        try:
            w = unpack(raw)
        except Exception:
            continue
        if not (isinstance(w, list) and len(w) in (8, 9) and isinstance(w[6], dict) and isinstance(w[7], dict)):
            continue
        author = w[8] if len(w) == 9 and isinstance(w[8], str) else ""
        origin, epoch, seq, hlc, entity, rid = w[:6]
        if not (
            isinstance(origin, str)
            and isinstance(entity, str)
            and isinstance(rid, str)
            and all(isinstance(x, int) for x in (epoch, seq, hlc))
        ):
            continue
        yield (origin, int(epoch), int(seq), int(hlc), entity, rid, pack(w[6]), pack(w[7]), author)  # type: ignore[arg-type]


def build_tree(rows: Iterable[Row], depth: int | None = None) -> MerkleTree:
    pairs = leaves(digests(rows))
    return MerkleTree.build(pairs, depth if depth is not None else depth_for(len(pairs)))


def row_to_wire(r: Row) -> list[object]:
    wire: list[object] = [r[0], r[1], r[2], r[3], r[4], r[5], unpack(bytes(r[6])), unpack(bytes(r[7]))]
    if len(r) > 8 and r[8]:
        wire.append(r[8])  # as sync.change.change_to_wire: a ninth element only when there is an author
    return wire


def keys_of(rows: Iterable[Row]) -> set[tuple[str, int, int]]:
    return {(r[0], r[1], r[2]) for r in rows}


def split_key(key: str) -> tuple[str, str]:
    entity, _, rid = key.partition(":")
    return entity, rid


def select_records(conn: sqlite3.Connection, sql: str, args: tuple[object, ...], keys: Iterable[str]) -> list[Row]:
    """Run a scope query restricted to the given record keys (``sql`` must end in a WHERE clause)."""
    out: list[Row] = []
    for key in keys:
        entity, rid = split_key(key)
        out.extend(conn.execute(sql + " AND c.entity=? AND c.rid=?", (*args, entity, rid)).fetchall())
    return out


__all__ = [
    "CHANGE_COLS",
    "Row",
    "build_tree",
    "digests",
    "keys_of",
    "record_key",
    "row_to_wire",
    "select_records",
    "split_key",
    "wire_rows",
]
