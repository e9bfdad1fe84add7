"""The nightly re-fold in pieces (issue 20): a record altered behind the hub's back is rebuilt by the
run after it was touched, or by the sweep within a pass, never by rewriting what a concurrent change
just wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import nightly, nightly_refold
from hub.service import Hub
from tests.applicants import People
from tests.hub_sql import hub_sql

from .conftest import District

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


def _tamper(hub_dir: Path, app_id: str) -> None:
    conn = hub_sql(hub_dir)
    with conn:
        conn.execute("UPDATE applications SET status='forged' WHERE id=?", (app_id,))
    conn.close()


def _status(hub_dir: Path, app_id: str) -> str:
    conn = hub_sql(hub_dir)
    try:
        return str(conn.execute("SELECT status FROM applications WHERE id=?", (app_id,)).fetchone()[0])
    finally:
        conn.close()


def _run(hub_dir: Path) -> dict[str, object]:
    hub = Hub.open(hub_dir)
    try:
        return nightly.run(hub, do_backup=False)
    finally:
        hub.close()


def test_a_small_hub_is_swept_whole_every_night(district: District, people: People) -> None:
    d = district
    with d.hub.serving():
        ids = [str(d.a.accept(people)["id"]) for _ in range(3)]
        d.a.sync()
    _tamper(d.hub_dir, ids[1])
    conn = d.hub_db()
    with conn:
        conn.execute("DELETE FROM records WHERE entity='application' AND id=?", (ids[2],))
    conn.close()
    out = _run(d.hub_dir)
    assert out["report"]["records_rebuilt"] == 2 and out["report"]["refold"]["pass_completed"] is True
    assert out["repaired"] >= 2 and _status(d.hub_dir, ids[1]) == "accepted"
    assert _run(d.hub_dir)["report"]["records_rebuilt"] == 0


def test_touched_records_nightly_and_the_rest_within_a_pass(
    district: District, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = district
    with d.hub.serving():
        ids = [str(d.a.accept(people)["id"]) for _ in range(6)]
        d.a.sync()
    monkeypatch.setattr(nightly_refold, "SWEEP_MIN", 1)
    monkeypatch.setattr(nightly_refold, "SWEEP_NIGHTS", 1000)  # one record a night
    first = _run(d.hub_dir)["report"]["refold"]
    assert first["swept"] == 1 and first["pass_completed"] is False
    with d.hub.serving():
        fresh = str(d.a.accept(people)["id"])
        d.a.sync()
    _tamper(d.hub_dir, fresh)  # touched since the last run: checked tonight whatever the sweep's turn
    _tamper(d.hub_dir, ids[4])  # not touched: waits for the sweep
    out = _run(d.hub_dir)["report"]
    assert out["refold"]["touched"] >= 1 and _status(d.hub_dir, fresh) == "accepted"
    runs = 0
    while _status(d.hub_dir, ids[4]) == "forged":
        runs += 1
        assert runs < 40, "the sweep reaches every record within a pass"
        _run(d.hub_dir)
