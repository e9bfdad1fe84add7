"""The station's Merkle leaves kept up to date between reconciliations (``replica/merkle_store.py``).

The station's scope is its whole log. Since the last reconciliation the log has only grown: the
records with a change logged above the mark (the log's rowid) get their leaf again from all their
changes, every other leaf stands. The two ways the log is altered in place keep to that: a re-issue
under a new epoch (``node/epoch.py``) deletes changes and logs each again under its record, so the
record is read again; a purge (``node/purge.py``) cuts a task's changes and keeps the leaf they had
in ``purged``, which stands for the task whatever is logged for it later.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from replica.merkle_store import LeafStore
from replica.scope import CHANGE_COLS, Row, split_key
from replica.scope import digests as plain_digests
from sync.merkle import MerkleTree, depth_for
from sync.scope import leaves, record_key

SCOPE = "station"
# A change whose personal values are sealed at rest keeps the digest of its plaintext (node/at_rest.py),
# which is what the hub, holding plaintext, computes: that one is used where it is there.
_COLS = CHANGE_COLS + ", c.digest"
_CHUNK = 500


def _purged(conn: sqlite3.Connection, keys: Iterable[str] | None) -> dict[str, bytes]:
    rows = conn.execute("SELECT entity, id, leaf FROM purged WHERE leaf IS NOT NULL").fetchall()
    wanted = None if keys is None else set(keys)
    out = {record_key(str(e), str(i)): bytes(leaf) for e, i, leaf in rows}
    return out if wanted is None else {k: v for k, v in out.items() if k in wanted}


def digests(rows: list[tuple[object, ...]]) -> list[tuple[str, str, bytes]]:
    out: list[tuple[str, str, bytes]] = []
    for r in rows:
        kept = r[9]
        if kept is not None:
            out.append((str(r[4]), str(r[5]), bytes(kept)))  # type: ignore[arg-type]
        else:
            out.extend(plain_digests([r[:9]]))  # type: ignore[list-item]
    return out


def _leaves_of(conn: sqlite3.Connection, keys: list[str]) -> dict[str, bytes | None]:
    rows: list[Row] = []
    for key in keys:
        entity, rid = split_key(key)
        rows += conn.execute(f"SELECT {_COLS} FROM changes c WHERE c.entity=? AND c.rid=?", (entity, rid))
    found: dict[str, bytes | None] = {k: None for k in keys}
    found.update(leaves(digests(rows)))
    found.update(_purged(conn, keys))
    return found


def refresh(conn: sqlite3.Connection) -> LeafStore:
    """Bring the stored leaves up to the log (call inside a transaction)."""
    store = LeafStore(conn, SCOPE)
    upto = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM changes").fetchone()[0])
    mark = store.mark()
    if not isinstance(mark, int):
        store.reset()
        rows: list[Row] = conn.execute(f"SELECT {_COLS} FROM changes c").fetchall()
        store.put({**dict(leaves(digests(rows))), **_purged(conn, None)})
    elif upto > mark:
        touched = conn.execute("SELECT DISTINCT entity, rid FROM changes WHERE rowid > ? AND rowid <= ?", (mark, upto))
        keys = sorted(record_key(str(e), str(r)) for e, r in touched)
        for i in range(0, len(keys), _CHUNK):
            store.put(_leaves_of(conn, keys[i : i + _CHUNK]))
    store.set_mark(upto)
    return store


def tree(conn: sqlite3.Connection) -> MerkleTree:
    """The scope's tree, at the depth its size calls for (call inside a transaction)."""
    store = refresh(conn)
    return store.tree(depth_for(store.count()))
