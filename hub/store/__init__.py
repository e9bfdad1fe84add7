"""The hub's store: every SQL statement of the hub lives behind :class:`HubStore`.

The ingest, feed, operations and CLI code talk to the database only through ``HubStore``, so that a
second backend (PostgreSQL, for a city-sized deployment) can be dropped in and run the same contract
tests (``tests/hub/test_store_contract.py`` and its siblings). Results are typed values, never cursors;
a database failure reaches callers as :class:`StoreError`. The contract of each method is in its
docstring; methods that write must be called inside :meth:`HubStore.transaction` (or a piece of the
group commit) unless they say otherwise.

One module per thing the store owns, each a part of ``HubStore``:
- ``base``: the connection, lifecycle, transactions and group commit, settings (``hub_meta``);
- ``stations``: the station tree, what each last told us, enrolment ``tokens``, ``operators``;
- ``chains``: ``cursors``, ``batches`` and ``horizons`` per origin, the change log by chain place;
- ``quarantine``: authentic changes (or whole batches) held back for an operator;
- ``refusals``: the refusal log (``rejected``) and ``alerts``, counted per source and hour;
- ``feed``: each station's downstream ``feed``, application owners, catalogue ``releases``;
- ``scope``: a station's reconciliation scope and its ``reconciliations``;
- ``records``: applications, tasks, reports, ``conflicts`` and ``tracking_codes``;
- ``blobs``: the photo index (``blobs``, ``blob_uploads``);
- ``figures``: the named counts the status pages show;
- ``morning_report``: what the nightly job's morning report reads;
- ``report_facts``: the 容缺 materials and ratings the nightly job keeps for that report;
- ``nightly_numbers``: the numbers held twice, as the nightly job re-checks them;
- ``nightly_runs``: the nightly job's runs, its kept reports, the refusal notes it prunes;
- ``staff``: station staff accounts made at the hub (``station_staff``), which each station's feed carries;
- ``pg_store``: the PostgreSQL backend's lifecycle and transactions (one writer: an advisory lock),
  with ``pg_dialect`` (the one SQL text, spoken to psycopg) and ``hub/schema_pg.py``;
- ``pg_feed``: a commit-order clock for feed positions, for when PostgreSQL has several writers at once.

Tables besides these are replica/'s (``replica/records.py``, ``replica/listing.py``), shared with the
stations; the tables of the nightly job and the dashboard are still read by their own modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from hub.store.base import DB_NAME, GroupTransaction, StoreBase
from hub.store.blobs import Blobs
from hub.store.chains import Chains, LoggedChange, Receipt
from hub.store.errors import StoreError
from hub.store.feed import Feed
from hub.store.figures import Figures
from hub.store.morning_report import MorningReport
from hub.store.nightly_numbers import NightlyNumbers
from hub.store.nightly_runs import NightlyRuns
from hub.store.pg_store import READ_SNAPSHOT, PgStoreBase, database_of, open_reader
from hub.store.quarantine import HeldEntry, Quarantine, QuarantineRow, WaitingChange
from hub.store.records import ConflictEntry, ConflictRow, Records
from hub.store.refusals import RefusalLog
from hub.store.report_facts import ReportFacts
from hub.store.scope import Scope
from hub.store.staff import Staff, StaffAccount
from hub.store.stations import STATION_COLS, Station, Stations
from replica import folders


class HubStore(
    Stations,
    Chains,
    Quarantine,
    RefusalLog,
    Feed,
    Scope,
    Records,
    Blobs,
    Figures,
    MorningReport,
    ReportFacts,
    NightlyNumbers,
    NightlyRuns,
    Staff,
    StoreBase,
):
    """The hub's persistent state behind one narrow interface: SQLite (``hub.db`` in the hub folder),
    or PostgreSQL (:class:`PgHubStore`) when the folder names a database."""

    @classmethod
    def create(cls, folder: Path, *, database: str | None = None) -> Self:
        """A new store for a new hub folder: ``hub.db`` in it, or with ``database`` (a PostgreSQL
        DSN) that database, named by a settings file in the folder (``hub/store/pg_store.py``)."""
        if database is not None:
            return PgHubStore.create_in(folder, database)  # type: ignore[return-value]
        return super().create(folder)

    @classmethod
    def open(cls, folder: Path) -> Self:
        folders.need_hub(folder)
        dsn = database_of(folder)
        if dsn is not None:
            return PgHubStore.open_at(dsn)  # type: ignore[return-value]
        return super().open(folder)


class PgHubStore(PgStoreBase, HubStore):
    """The whole store on PostgreSQL: every part's SQL, through ``hub/store/pg_dialect.py``."""


__all__ = [
    "DB_NAME",
    "READ_SNAPSHOT",
    "STATION_COLS",
    "ConflictEntry",
    "ConflictRow",
    "GroupTransaction",
    "HeldEntry",
    "HubStore",
    "LoggedChange",
    "PgHubStore",
    "QuarantineRow",
    "Receipt",
    "StaffAccount",
    "Station",
    "StoreError",
    "WaitingChange",
    "database_of",
    "open_reader",
]
