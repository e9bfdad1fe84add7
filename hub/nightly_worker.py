"""The nightly job in a process of its own: ``python -m hub.nightly_worker FOLDER TRIGGER [DAYS [DUE_MS]]``.

``hub serve`` starts it on schedule (``hub/server.py``) rather than running the job in one of its
threads: a thread shares Python's lock with the event loop, and at a million applications the job's
garbage collections and long C calls held the loop up for a fifth of a second at times. A process
shares only the database (its own connection, short write transactions) and runs at a lower
priority. It logs to the serving process's stderr, as the job did, and prints one JSON line, the
run's figures and outcome, for ``hub serve`` to log. With DUE_MS (the scheduled time the run is for)
it first makes sure no other hub process runs or ran it (``hub/nightly_once.py``), and otherwise
prints ``{"outcome": "skipped", "why": ...}``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
from pathlib import Path

from hub import nightly, nightly_once
from replica.ids import now_ms

NICE = 10  # below the serving process's 0: a busy machine answers requests first
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """A hub that dies (killed, crashed) must not leave its nightly job writing on: ``hub restore`` and
    the next ``hub serve`` expect nobody else in the folder. Linux sends us SIGTERM when the serving
    process goes; if it went before we asked, we stop now."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise SystemExit(3)


def main(argv: list[str]) -> int:
    die_with_parent(os.getppid())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    folder, trigger = Path(argv[0]), argv[1]
    options = {"partial_retention_days": int(argv[2])} if len(argv) > 2 else {}
    due_ms = int(argv[3]) if len(argv) > 3 else None  # the slot this run is for (hub/nightly_once.py)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICE)
    with nightly_once.claimed(folder, due_ms) as skipped:
        if skipped is not None:
            # Another hub process runs it, or ran it for this slot already: once a night, not once a process.
            print(json.dumps({"outcome": "skipped", "why": skipped}), flush=True)
            return 0
        result = nightly.run_apart(folder, now_ms, trigger, **options)
    print(json.dumps({k: result[k] for k in ("outcome", "overdue", "run")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
