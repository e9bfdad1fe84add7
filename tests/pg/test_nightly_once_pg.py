"""The nightly job once across hub processes on several machines: on a PostgreSQL hub the job's claim
(``hub/nightly_once.claimed``) also needs the database's session lock, which no lock file can give
processes that do not share a kernel."""

from __future__ import annotations

from pathlib import Path

from hub.nightly_once import RUNNING_ELSEWHERE, claimed
from hub.store import HubStore
from hub.store.pg_store import nightly_claim


def test_a_process_on_another_machine_holding_the_job_keeps_this_one_out(tmp_path: Path, pg_dsn: str) -> None:
    folder = tmp_path / "hub"
    HubStore.create(folder, database=pg_dsn).close()
    with nightly_claim(pg_dsn) as held_elsewhere:  # another machine: its own connection, no shared lock file
        assert held_elsewhere
        with claimed(folder, None) as why:
            assert why == RUNNING_ELSEWHERE
    with claimed(folder, None) as why:  # the other's connection ended: the lock went with it
        assert why is None
        with nightly_claim(pg_dsn) as second:
            assert not second  # and while this process runs the job, nobody else may
