"""The signed summary at the end of a reconciliation: the hub's count of a station's applications by
status, which the station compares with its own (it catches what the change log cannot: a projection
edited behind the fold's back)."""

from __future__ import annotations

import pytest

from tests.applicants import People

from .conftest import District, ok, run_sanji

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

IMMEDIATE = "360802-0001"
PROMISED = "360802-0004"


def _tamper_status(d: District, number: str, status: str) -> None:
    """Change an application's status in the hub's applications table directly, with no change."""
    hub = d.hub_db()
    assert hub.execute("UPDATE applications SET status=? WHERE number=?", (status, number)).rowcount == 1
    hub.commit()
    hub.close()


def test_summary_matches_in_agreement_and_not_after_a_hub_side_edit(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, PROMISED)
        a.accept(people, IMMEDIATE)
        a.sync()
        agreed = a.reconcile()
        assert agreed["summary_match"] is True
        assert agreed["divergent"] == 0 and agreed["repaired"] == 0
        assert agreed["bytes"] > 0 and agreed["buckets_compared"] == 0

        _tamper_status(d, sorted(a.numbers())[0], "approved")
        got = a.reconcile()
        assert got["summary_match"] is False
        assert got["divergent"] == 0, "the change logs still agree: only the summary can see this"
        assert "区局统计的本站办件数与本站不符" in a.status()["last_error"]


# Regression (a strict xfail until the bug was fixed).
def test_summary_mismatch_reaches_the_morning_report(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, PROMISED)
        a.sync()
        _tamper_status(d, a.numbers()[0], "denied")
        assert a.reconcile()["summary_match"] is False
        hub = d.hub_db()
        stored = hub.execute("SELECT summary_match FROM reconciliations ORDER BY id DESC").fetchone()
        hub.close()
        report = ok("hub", "reconcile", d.hub_dir, "--no-backup")["report"]
    assert report["anti_entropy"]["stations_checked"] == 1
    # What the hub recorded of the session, and what the operator reads in the morning.
    assert (stored[0], report["anti_entropy"]["summary_mismatches"]) == (0, 1)


# Regression (a strict xfail until the bug was fixed).
def test_the_nightly_run_repairs_an_edited_projection(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, PROMISED)
        a.accept(people, IMMEDIATE)
        a.sync()
        _tamper_status(d, sorted(a.numbers())[0], "approved")
        assert a.reconcile()["summary_match"] is False
        ok("hub", "reconcile", d.hub_dir, "--no-backup")
        assert a.reconcile()["summary_match"] is True
        assert d.hub_view(a.code) == a.view()


def test_reconcile_with_the_hub_down_exits_3_and_changes_nothing(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, PROMISED)
        a.sync()
    before = a.view()
    res = run_sanji("node", "reconcile", a.dir)
    assert res.code == 3, res
    assert "连不上区局" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert a.view() == before
