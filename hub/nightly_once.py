"""The nightly job once a night, however many processes serve the hub (`hub serve --workers N`).

Every serving process keeps the nightly schedule (``hub/server.py``), so that whichever workers are
alive the job still runs; at the scheduled time each starts ``hub/nightly_worker.py``, and that
process asks :func:`claimed` first. It runs the job only if

- it holds the lock file ``HUB/nightly.lock`` (``fcntl.flock``, exclusive, not waiting): a job already
  running in another process means this one has nothing to do. The kernel lets go of the lock when
  the holder exits, however it exits, so a job killed half-way never leaves a stale lock behind (a
  lease row in the database would have to expire first); and
- no run has completed since the slot it was started for (``due_ms``: 02:00 tonight, or for the
  catch-up the slot that was missed): a worker whose timer fired a moment after another's finished
  run must not run it a second time. A run that died half-way is not complete, so the next start
  runs it again, as with one process.

The lock file binds the processes of one machine, which is what `--workers N` makes. On a hub whose
store is PostgreSQL the job also takes the database's session lock (``pg_try_advisory_lock``,
``hub/store/pg_store.nightly_claim``), which binds hub processes on every machine that shares the
database; PostgreSQL lets it go when the holder's connection ends, however the holder dies.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.store import HubStore
from hub.store.pg_store import database_of, nightly_claim

LOCK_FILE = "nightly.lock"
RUNNING_ELSEWHERE = "running_elsewhere"
DONE = "done"


@contextmanager
def claimed(folder: Path, due_ms: int | None) -> Iterator[str | None]:
    """None while this process is the one to run the job (the lock is held until the block ends);
    otherwise why not: :data:`RUNNING_ELSEWHERE` or :data:`DONE`."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield RUNNING_ELSEWHERE
            return
        dsn = database_of(folder)
        if dsn is None:
            yield DONE if due_ms is not None and _ran_since(folder, due_ms) else None
            return
        with nightly_claim(dsn) as held:
            if not held:
                yield RUNNING_ELSEWHERE
                return
            yield DONE if due_ms is not None and _ran_since(folder, due_ms) else None
    finally:
        os.close(fd)  # and with it the lock


def _ran_since(folder: Path, due_ms: int) -> bool:
    store = HubStore.open(folder)
    try:
        last = store.last_run_start()  # of runs that completed, whatever their outcome
    finally:
        store.close()
    return last is not None and last >= due_ms
