"""Every query the list pages (hub dashboard, station window, CLI listings) and the nightly job run has
an index that fits it: at ten years of data (issue 20) a scan of ``applications`` or ``changes`` is a
second or more, on the event loop.

The queries are not copied here: the real functions run against a small hub and station with
SQLite's trace callback on, every statement they execute is recorded with its parameters, and each is
planned with ``EXPLAIN QUERY PLAN``. The hub's pages read through its read model (``hub/reads``), in
its threads over its own read-only connections: the trace is set on every one of those
(``ReadModel.trace``). Without ``ANALYZE`` statistics (neither side runs it) SQLite's
plan does not depend on how many rows there are, so a small store shows the plan a large one gets.

A plan line ``SCAN applications`` or ``SCAN changes`` fails unless it is bounded: the statement has a
``LIMIT`` and the scan walks an index in the order asked (no temporary B-tree sorts it first), so it
stops after the page's rows. The one exception is named with its reason in ``UNBOUNDED_BY_DESIGN``;
search (the start of a number or a name) is checked like every other filter.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub import nightly, review_lists
from hub.dashboard import data
from hub.reads import ReadHub, ReadModel
from node.ui.receipt import upload_state
from replica import listing
from tests.ui.conftest import ITEM_PROMISED
from tests.ui.inproc import Pair

# Statements allowed to read every row, and why.

UNBOUNDED_BY_DESIGN: dict[str, Callable[[str, list[str]], bool]] = {
    # `hub applications` / `node applications` print every application: one walk of the index in the
    # order printed, streamed row by row (never sorted in memory first).
    "the CLI's full listing": lambda sql, lines: (
        sql.endswith("ORDER BY accepted_at, number") and not any("TEMP B-TREE" in ln for ln in lines)
    ),
}
SCAN = re.compile(r"^SCAN (applications|changes)\b")
# Walks, like a SCAN: a keyset range of accepted_at open at one end (every row older than a page), and
# a station's whole log found by its origin alone (the per-row query issue 20 found in the station list).
WALK = re.compile(
    r"^SEARCH applications USING (COVERING )?INDEX applications_accepted \((accepted_at>\? AND )?\(accepted_at,"
    r"|^SEARCH changes USING (COVERING )?INDEX \w+ \(origin=\?\)$"
)
# What a walk may skip past without reading more than it returns: rows not yet complete, the keyset.
FREE = re.compile(r"accepted_at IS NOT NULL|number IS NOT NULL|\(\+?accepted_at, \+?number\) [<>] \('[^']*', '[^']*'\)")


def plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]


def residual(sql: str) -> list[str]:
    """The WHERE terms a walk in index order has to test row by row (beyond FREE)."""
    if " WHERE " not in sql:
        return []
    where = sql.split(" WHERE ", 1)[1].split(" ORDER BY ", 1)[0].split(" LIMIT ", 1)[0]
    return [t for t in FREE.sub("", where).split(" AND ") if t.strip()]


def offenders(conn: sqlite3.Connection, statements: list[str]) -> list[tuple[str, list[str]]]:
    """Statements whose plan reads rows without a bound: a full scan, or a walk in index order that
    either sorts first (no early stop at LIMIT) or tests a filter on every row it passes (a rare
    match means reading them all)."""
    out = []
    for sql in statements:
        head = sql.lstrip().split(None, 1)[0].upper()
        if head not in ("SELECT", "WITH", "UPDATE", "DELETE"):
            continue
        lines = plan(conn, sql)
        if any(allowed(sql, lines) for allowed in UNBOUNDED_BY_DESIGN.values()):
            continue
        walks = [ln for ln in lines if SCAN.match(ln) or WALK.match(ln)]
        bounded = (
            " LIMIT " in sql
            and all("USING" in ln for ln in walks)
            and not any("TEMP B-TREE" in ln for ln in lines)
            and not residual(sql)
        )
        if walks and not bounded:
            out.append((sql, lines))
    return out


def traced(conn: sqlite3.Connection, action: Callable[[], Any]) -> list[str]:
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    return seen


@pytest.fixture
def district(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    for _ in range(3):
        p.accept()
    p.accept(ITEM_PROMISED)
    p.conflict()
    p.quarantine()
    p.push()
    p.pull()
    yield p
    p.close()


def test_the_plan_check_catches_a_scan(district: Pair) -> None:
    """The check itself: the per-row query the station list ran before issue 20, and a sort of every
    application, are both caught."""
    conn = district.st.conn
    old = f"SELECT epoch, seq FROM changes WHERE origin='{district.st.code}' AND application='x' ORDER BY epoch DESC"
    sorted_all = "SELECT number FROM applications ORDER BY due_date LIMIT 10"
    # A search's next page that SQLite read as a range of accepted_at, testing the name on each row.
    searched = (
        "SELECT number FROM applications WHERE accepted_at IS NOT NULL AND number IS NOT NULL"
        " AND applicant_name LIKE '%x%' AND (accepted_at, number) < ('2026-01-01', 'x')"
        " ORDER BY accepted_at DESC, number DESC LIMIT 10"
    )
    first_page = "SELECT number FROM applications WHERE accepted_at IS NOT NULL ORDER BY accepted_at DESC LIMIT 10"
    assert [sql for sql, _ in offenders(conn, [old, sorted_all, searched, first_page])] == [old, sorted_all, searched]


def read_traced(reads: ReadModel, action: Callable[[ReadHub], Any]) -> list[str]:
    """The statements ``action`` runs in the read model's threads."""
    seen: list[str] = []
    reads.trace(seen.append)
    try:
        reads.call(action)
    finally:
        reads.trace(None)
    return seen


def test_hub_list_pages_use_indexes(district: Pair) -> None:
    hub = district.hub
    code = district.st.code
    reads = ReadModel(hub)
    first = reads.call(data.search)
    key = ("2020-01-01T00:00:00+08:00", "x")

    def pages(hub: ReadHub) -> None:
        for due in ("", "overdue", "soon", "open"):
            for station in ("", code):
                for status in ("", "accepted", "under_review"):
                    data.search(hub, due=due, station=station, status=status)
                    data.search(hub, due=due, station=station, status=status, older_than=key)
                    data.search(hub, due=due, station=station, status=status, newer_than=key)
        for q in ("测试", "测"):
            data.search(hub, q=q)
            data.search(hub, q=q, older_than=key)
            data.search(hub, q=q, newer_than=key)
        data.search(hub, q=str(first.rows[0]["number"]))  # a whole number: the unique index, checked
        data.overview(hub)
        for show_all in (False, True):
            for station in ("", code):
                review_lists.conflicts(hub, show_all=show_all, station=station)
                review_lists.conflicts(hub, show_all=show_all, station=station, older=("9" * 20, "z"))
                review_lists.quarantine(hub, show_all=show_all, station=station)
                review_lists.quarantine(hub, show_all=show_all, station=station, newer=("1", "1"))

    def cli() -> None:
        for station, status in ((None, None), (code, None), (None, "accepted"), (code, "accepted")):
            list(listing.iter_applications(hub.store.conn, station=station, status=status))

    try:
        statements = read_traced(reads, pages)
    finally:
        reads.close()
    assert first.total >= 5 and len(statements) > 50
    assert any("FROM conflicts" in s for s in statements) and any("FROM quarantine" in s for s in statements)
    statements += traced(hub.store.conn, cli)
    assert offenders(hub.store.conn, statements) == []


def test_station_list_page_uses_indexes(district: Pair) -> None:
    st = district.st
    key = ("2020-01-01T00:00:00+08:00", "x")

    def pages() -> None:
        for due in ("", "overdue", "soon", "open"):
            for status in ("", "accepted"):
                f = listing.Filters(status=status, due=due, today="2026-06-01", soon_until="2026-06-04")
                found = listing.page(st.conn, f)
                listing.page(st.conn, f, older_than=key)
                for r in found.rows:
                    upload_state(st, str(r["id"]), verify=False)

    statements = traced(st.conn, pages)
    assert any("FROM changes" in s for s in statements)
    assert offenders(st.conn, statements) == []


def test_nightly_job_uses_indexes(district: Pair) -> None:
    hub = district.hub
    statements = traced(hub.store.conn, lambda: nightly.run(hub, do_backup=False))
    assert statements
    assert offenders(hub.store.conn, statements) == []
