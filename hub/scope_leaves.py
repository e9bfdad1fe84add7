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

from collections.abc import Iterator
from typing import TYPE_CHECKING

from hub.reconcile_scope import held_rows, records_for, scope_rows
from replica.merkle_store import LeafStore
from replica.scope import digests
from sync.merkle import MerkleTree, depth_for
from sync.scope import leaves, record_key

if TYPE_CHECKING:
    from hub.service import Hub

_CHUNK = 500
_PUT_CHUNK = 5_000  # leaves per transaction when a scope is read whole


def _touched(hub: Hub, station: str, mark: list[int], upto: tuple[int, int]) -> list[str]:
    keys = {record_key(e, r) for e, r in hub.store.touched_records(station, mark[0], upto[0])}
    keys.update(record_key(r[4], r[5]) for r in held_rows(hub, station, mark[1], upto[1]))
    return sorted(keys)


def _current(hub: Hub) -> tuple[int, int]:
    return hub.store.last_change_rowid(), hub.store.last_quarantine_id()


def _marked(mark: object) -> bool:
    return isinstance(mark, list) and len(mark) == 2 and all(isinstance(m, int) for m in mark)


def _pending(hub: Hub, station: str, store: LeafStore, upto: tuple[int, int]) -> Iterator[dict[str, bytes | None]]:
    """The leaves to write, a chunk at a time: every record of the scope the first time, else the
    records touched since the mark."""
    mark = store.mark()
    if not _marked(mark):
        pairs = leaves(digests(scope_rows(hub, station)))
        for i in range(0, len(pairs), _PUT_CHUNK):
            yield dict(pairs[i : i + _PUT_CHUNK])
    elif tuple(mark) != upto:  # type: ignore[arg-type]
        keys = _touched(hub, station, mark, upto)  # type: ignore[arg-type]
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            found: dict[str, bytes | None] = {k: None for k in part}
            found.update(leaves(digests(records_for(hub, station, part))))
            yield found


def refresh(hub: Hub, station: str) -> LeafStore:
    """Bring the station's stored leaves up to what the hub holds (call inside a transaction)."""
    store = hub.store.leaf_store(f"station:{station}")
    upto = _current(hub)
    if not _marked(store.mark()):
        store.reset()
    for chunk in _pending(hub, station, store, upto):
        store.put(chunk)
    store.set_mark(list(upto))
    return store


def prepare_all(hub: Hub) -> dict[str, int]:
    """Every station's leaves and its tree's bucket digests brought up to date, for the nightly job (in
    a process of its own), so that the stations' reconciliations find them ready and the reconcile
    handler, on the event loop, has a night's changes at most to read. Written a chunk per short
    transaction; the mark last, so a reconciliation that comes between starts from the mark before."""
    stations = [s.code for s in hub.store.stations() if not s.revoked]
    written = 0
    for station in stations:
        store = hub.store.leaf_store(f"station:{station}")
        upto = _current(hub)
        if not _marked(store.mark()):
            with hub.store.transaction():
                store.reset()
        for chunk in _pending(hub, station, store, upto):
            with hub.store.transaction():
                store.put(chunk)
            written += len(chunk)
        with hub.store.transaction():
            store.set_mark(list(upto))
            store.tree(depth_for(store.count()))
    return {"stations": len(stations), "leaves_written": written}


def tree(hub: Hub, station: str, depth: int) -> MerkleTree:
    """The station's scope as a tree of ``depth`` levels, from the stored leaves brought up to date."""
    with hub.store.transaction():
        return refresh(hub, station).tree(depth)
