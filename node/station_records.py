"""The station's record store: replica's fold and log, with one station hook on every change logged.

The hook (``node/at_rest_arrivals.incoming``) turns a change's plaintext personal values into what
the station keeps at rest and gives the plaintext's anti-entropy digest and its values sealed to the
hub, written beside the logged change (``changes.digest``, ``changes.hub_seal``). The hub uses
``replica.records.RecordStore`` itself and has no hook.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from replica.records import RecordStore, Run
from sync.change import Change

Hook = Callable[[Change], tuple[Change, bytes | None, bytes | None]]


class StationRun(Run):
    def __init__(self, store: RecordStore, hook: Hook) -> None:
        super().__init__(store)
        self.hook = hook

    def add(self, change: Change) -> tuple[int, Change, str] | None:
        stored, digest, hub_seal = self.hook(change)
        entry = super().add(stored)
        if entry is not None and digest is not None:
            self.store.conn.execute(
                "UPDATE changes SET digest=?, hub_seal=? WHERE rowid=?", (digest, hub_seal, entry[0])
            )
        return entry


class StationRecords(RecordStore):
    def __init__(self, db: sqlite_utils.Database, authority: Callable[[str], int], hook: Hook) -> None:
        super().__init__(db, authority)
        self.hook = hook

    def run(self) -> Run:
        return StationRun(self, self.hook)
