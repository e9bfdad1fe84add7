"""The backends the :class:`hub.store.HubStore` contract runs against, and the values its tests share.

The contract is written once, in ``test_store_contract.py``, ``test_store_stations.py``,
``test_store_sync.py``, ``test_store_chains.py``, ``test_store_records.py`` and ``test_store_staff.py``;
the ``backend`` and ``store`` fixtures in ``conftest.py`` run every one of those tests on every backend
here. To add a backend, append a :class:`Backend` to ``BACKENDS``.

``postgres`` runs on a fresh database of the throwaway cluster per test (``tests/pg_fixtures.py``):
the ``backend`` fixture binds it to that test's ``pg_dsn`` (:func:`bound`). Without PostgreSQL's
binaries those tests fail with how to install them; they are never skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hub.store import HubStore
from replica.records import RecordStore
from sync.change import Change

T0 = 1_772_413_200_000
KEY_A, KEY_B = bytes(range(32)), bytes(range(32, 64))
SEAL_A, SEAL_B = bytes(range(64, 96)), bytes(range(96, 128))
H1, H2, H3, H4 = (bytes([n]) * 32 for n in (1, 2, 3, 4))


@dataclass(frozen=True)
class Backend:
    name: str
    create: Callable[[Path], HubStore]
    reopen: Callable[[Path], HubStore]
    log_changes: Callable[[HubStore, Sequence[Change]], list[int]]
    database: str | None = None  # the PostgreSQL DSN a bound backend creates its stores in


def _log(store: HubStore, changes: Sequence[Change]) -> list[int]:
    with store.transaction():
        result = RecordStore(store.db, lambda origin: 1).apply(list(changes))
    return [rowid for rowid, _, _ in result.logged]


def _unbound(folder: Path) -> HubStore:
    raise AssertionError("the postgres backend needs a database: use the backend fixture")


BACKENDS = [
    Backend("sqlite", HubStore.create, HubStore.open, _log),
    Backend("postgres", _unbound, HubStore.open, _log),
]


def bound(backend: Backend, dsn: str) -> Backend:
    """The PostgreSQL backend creating its stores in the database ``dsn``."""
    return replace(backend, create=lambda folder: HubStore.create(folder, database=dsn), database=dsn)


def _station_tree(store: HubStore) -> None:
    with store.transaction():
        store.add_station("T1", "一镇", "township", "", T0)
        store.add_station("T1-V1", "一村", "village", "T1", T0)
        store.add_station("T1-V2", "二村", "village", "T1", T0)
        store.add_station("T2", "二镇", "township", "", T0)
        store.add_station("T2-V1", "三村", "village", "T2", T0)


def _record(
    store: HubStore, h: bytes, first: int, last: int, *, origin: str = "T1-V1", epoch: int = 1, result: str = "applied"
) -> None:
    store.record_batch(
        h,
        origin,
        epoch,
        first,
        last,
        now_ms=T0,
        result=result,
        applied=last - first + 1,
        quarantined=0,
        receipt=b"receipt:" + h[:1],
        source="test",
    )
