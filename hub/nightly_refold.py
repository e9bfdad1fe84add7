"""The nightly job's re-fold (``replica/refold.py``): the records touched since the last run, and the
next slice of all records, so every record is checked within :data:`SWEEP_NIGHTS` runs.

It comes in two parts so the reading can run beside the integrity check and the backup
(``hub/nightly.py``): :func:`find` only reads, and :func:`finish`, once the database is known sound,
rewrites what still differs (each piece in a short write transaction) and moves the marks
``refold_rowid`` (the log's rowid read up to) and ``refold_sweep_after`` (the last key swept) on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from replica import refold as refolding

if TYPE_CHECKING:
    from hub.service import Hub

SWEEP_NIGHTS = 7  # every record is re-folded at least once in this many runs
SWEEP_MIN = 20_000  # records a run sweeps at least: a small hub is checked whole every night
CHECK_CHUNK = 2_000  # records read and compared at a time
REFOLD_MARK = "refold_rowid"
SWEEP_AT = "refold_sweep_after"
Key = tuple[str, str]


@dataclass
class Found:
    """What :func:`find` read: the suspects, and the figures and marks to record once they are fixed."""

    suspects: list[Key]
    upto: int
    after: Key | None
    touched: int
    swept: int
    records: int
    completed: bool


def find(hub: Hub) -> Found:
    """Read the records touched since the last run and the next slice; note those that differ."""
    # replica/refold.py's shared readers take a connection, as the station's and the hub's alike.
    conn, store = hub.store.replica_connection, hub.records
    upto = hub.store.last_change_rowid()
    mark = hub.store.get_meta(REFOLD_MARK)
    touched = refolding.touched_since(conn, mark, upto) if isinstance(mark, int) else []
    suspects: list[Key] = []
    for i in range(0, len(touched), CHECK_CHUNK):
        suspects += refolding.find(store, touched[i : i + CHECK_CHUNK])
    total = hub.store.records_held()
    budget = max(SWEEP_MIN, math.ceil(total / SWEEP_NIGHTS))
    at = hub.store.get_meta(SWEEP_AT)
    after = (str(at[0]), str(at[1])) if isinstance(at, list) and len(at) == 2 else None
    swept, completed = 0, False
    while swept < budget:
        keys = refolding.next_slice(conn, after, min(CHECK_CHUNK, budget - swept))
        if not keys:
            after, completed = None, True  # a whole pass is done: the next run starts again from the first
            break
        suspects += refolding.find(store, keys, contiguous=True)
        swept += len(keys)
        after = keys[-1]
    return Found(sorted(set(suspects)), upto, after, len(touched), swept, total, completed)


def finish(hub: Hub, found: Found) -> tuple[dict[str, object], list[Key]]:
    """Rewrite the suspects that still differ and move the marks on. Returns the figures and the keys
    rebuilt."""
    fixed: list[Key] = []
    for i in range(0, len(found.suspects), CHECK_CHUNK):
        fixed += refolding.fix(hub.records, found.suspects[i : i + CHECK_CHUNK], write=hub.store.transaction)
    with hub.store.transaction():
        hub.store.set_meta(REFOLD_MARK, found.upto)
        hub.store.set_meta(SWEEP_AT, list(found.after) if found.after else None)
    figures: dict[str, object] = {
        "touched": found.touched,
        "swept": found.swept,
        "records": found.records,
        "pass_completed": found.completed,
        "rebuilt": len(fixed),
    }
    return figures, sorted(fixed)


def refold(hub: Hub) -> tuple[dict[str, object], list[Key]]:
    """Both parts at once."""
    return finish(hub, find(hub))
