"""Each station's Merkle leaves at the hub, kept up to date between reconciliations
(``replica/merkle_store.py``).

A station's scope at the hub is the changes it authored, the changes in its feed, and its changes
held in quarantine (``hub/reconcile.py``). The hub only ever adds to those: a change is logged once
and never deleted or rewritten, a feed entry is added when its change is logged, a held change stays
held. So since the last reconciliation the records to read again are the ones with a change the
station authored logged above the mark, a feed entry above it, or a held change above the
quarantine's mark; every other leaf stands. A restore puts back the leaves with the database they
were made from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.reconcile_scope import HELD_SQL, records_for, scope_rows
from replica.merkle_store import LeafStore
from replica.scope import digests, wire_rows
from sync.merkle import MerkleTree
from sync.scope import leaves, record_key

if TYPE_CHECKING:
    from hub.service import Hub

_CHUNK = 500


def _touched(hub: Hub, station: str, mark: list[int], upto: tuple[int, int]) -> list[str]:
    conn = hub.store.conn
    keys = {
        record_key(str(e), str(r))
        for e, r in conn.execute(
            "SELECT entity, rid FROM changes WHERE rowid > ? AND rowid <= ? AND origin=?", (mark[0], upto[0], station)
        )
    }
    keys.update(
        record_key(str(e), str(r))
        for e, r in conn.execute(
            "SELECT c.entity, c.rid FROM feed f JOIN changes c ON c.rowid = f.change"
            " WHERE f.station=? AND f.change > ? AND f.change <= ?",
            (station, mark[0], upto[0]),
        )
    )
    raws = conn.execute(HELD_SQL + " AND id > ? AND id <= ?", (station, mark[1], upto[1]))
    keys.update(record_key(r[4], r[5]) for r in wire_rows(bytes(x[0]) for x in raws))
    return sorted(keys)


def refresh(hub: Hub, station: str) -> LeafStore:
    """Bring the station's stored leaves up to what the hub holds (call inside a transaction)."""
    conn = hub.store.conn
    store = LeafStore(conn, f"station:{station}")
    upto = (
        int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM changes").fetchone()[0]),
        int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM quarantine").fetchone()[0]),
    )
    mark = store.mark()
    if not (isinstance(mark, list) and len(mark) == 2 and all(isinstance(m, int) for m in mark)):
        store.reset()
        store.put(dict(leaves(digests(scope_rows(hub, station)))))
    elif tuple(mark) != upto:
        keys = _touched(hub, station, mark, upto)
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            found: dict[str, bytes | None] = {k: None for k in part}
            found.update(leaves(digests(records_for(hub, station, part))))
            store.put(found)
    store.set_mark(list(upto))
    return store


def tree(hub: Hub, station: str, depth: int) -> MerkleTree:
    """The station's scope as a tree of ``depth`` levels, from the stored leaves brought up to date."""
    with hub.store.transaction():
        return refresh(hub, station).tree(depth)
