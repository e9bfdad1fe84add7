"""``tests/test_query_plans.py`` on PostgreSQL: every query the hub's list pages, its CLI listing and the
nightly job run has an index that fits it in ``hub/schema_pg.py`` too.

The queries are not copied here either: the real functions run against a small hub in a database of
the throwaway cluster with the store's trace on (``PgConnection.set_trace_callback``, which hands over
each statement as it ran, its values bound in), and each statement is planned with ``EXPLAIN``.

How a small database shows what a big one needs. PostgreSQL's planner costs plans from the table's
statistics, and on a table of a few rows a sequential scan is cheapest whatever the indexes: its plan
says nothing about ten years of data. Loading enough rows for the planner to prefer an index would
make this test slow and its outcome depend on the statistics ANALYZE happens to draw. Instead each
statement is planned with ``SET enable_seqscan = off``, which makes a sequential scan cost more than
any other plan: a statement that still shows ``Seq Scan`` on a table that grows with the district has
no index it can use. The same setting would hide a missing index behind a walk of the whole of some
other index (an ``Index Scan`` with no ``Index Cond``, filtering every row), so such a walk fails too,
unless it is bounded as on SQLite: the statement has a ``LIMIT`` and nothing sorts the rows first.
Joins are planned as nested loops (hash and merge joins off), the plan a page's few outer rows get.

The indexes themselves are checked for parity as the tables are (``tests/pg/test_schema_parity.py``):
every index of a migrated SQLite hub exists on PostgreSQL by the same name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hub import nightly, review_lists
from hub.dashboard import data
from hub.reads import ReadHub, ReadModel
from hub.store import HubStore, PgHubStore
from replica import listing
from tests.ui.conftest import ITEM_PROMISED
from tests.ui.inproc import Pair

# The tables that grow with every application, as in tests/test_query_plans.py (``records`` holds a row
# for each application and each of its parts). The others stay small by design: one row per station
# or per night, or are pruned by retention (refusals) or rebuilt whole each night (the nightly facts).
GROWING = {"applications", "changes", "records"}
SORTS = {"Sort", "Incremental Sort"}

# Statements allowed to read every row, and why (as in tests/test_query_plans.py).
UNBOUNDED_BY_DESIGN: dict[str, Callable[[str], bool]] = {
    # `hub applications` prints every application: one walk of the index in the order printed.
    "the CLI's full listing": lambda sql: sql.rstrip().endswith("ORDER BY accepted_at, number"),
}


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def unbounded(conn: psycopg.Connection[Any], sql: str) -> list[str]:
    """The scans of growing tables in ``sql``'s plan that read rows without a bound."""
    (doc,) = conn.execute(("EXPLAIN (FORMAT JSON) " + sql).encode()).fetchone()  # type: ignore[misc]
    plan = (json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]
    nodes = list(_nodes(plan))
    bounded = " LIMIT " in sql.upper() and not any(n["Node Type"] in SORTS for n in nodes)
    found = []
    for n in nodes:
        table = n.get("Relation Name")
        if table not in GROWING:
            continue
        kind = n["Node Type"]
        if kind == "Seq Scan":
            found.append(f"Seq Scan on {table}")
        elif kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in n and not bounded:
            # A walk of a whole index: bounded only if a LIMIT stops it and no sort reads it all first.
            found.append(f"{kind} on {table} using {n.get('Index Name')} without a condition")
    return found


def offenders(dsn: str, statements: list[str]) -> list[tuple[str, list[str]]]:
    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        # Joins as nested loops, the plan a page's handful of outer rows gets: each inner scan then
        # shows whether an index serves the join's key (a merge join would walk whole indexes here).
        conn.execute("SET enable_hashjoin = off")
        conn.execute("SET enable_mergejoin = off")
        for sql in dict.fromkeys(statements):  # each distinct statement once
            head = sql.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "WITH", "UPDATE", "DELETE"):
                continue
            if any(allowed(sql) for allowed in UNBOUNDED_BY_DESIGN.values()):
                continue
            found = unbounded(conn, sql)
            if found:
                out.append((sql, found))
    return out


@pytest.fixture
def district(tmp_path: Path, pg_dsn: str) -> Iterator[Pair]:
    p = Pair(tmp_path, database=pg_dsn)
    for _ in range(3):
        p.accept()
    p.accept(ITEM_PROMISED)
    p.conflict()
    p.quarantine()
    p.push()
    p.pull()
    yield p
    p.close()


def test_the_plan_check_catches_a_scan(district: Pair, pg_dsn: str) -> None:
    """The check itself: a filter no index serves, and a sort of every application, are caught; a first
    page walked in index order is not."""
    no_index = "SELECT number FROM applications WHERE applicant_phone = '13900000001'"
    sorted_all = "SELECT number FROM applications ORDER BY due_date LIMIT 10"
    first_page = "SELECT number FROM applications WHERE accepted_at IS NOT NULL ORDER BY accepted_at DESC LIMIT 10"
    caught = [sql for sql, _ in offenders(pg_dsn, [no_index, sorted_all, first_page])]
    assert caught == [no_index, sorted_all]


def _traced(conn: Any, action: Callable[[], Any]) -> list[str]:
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    return seen


def test_hub_list_pages_use_indexes(district: Pair, pg_dsn: str) -> None:
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
        data.search(hub, q=str(first.rows[0]["number"]))
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

    seen: list[str] = []
    reads.trace(seen.append)
    try:
        reads.call(pages)
    finally:
        reads.trace(None)
        reads.close()
    assert first.total >= 5 and len(seen) > 50
    assert any("FROM conflicts" in s for s in seen) and any("FROM quarantine" in s for s in seen)
    statements = seen + _traced(hub.store.conn, cli)
    assert offenders(pg_dsn, statements) == []


def test_nightly_job_uses_indexes(district: Pair, pg_dsn: str) -> None:
    hub = district.hub
    statements = _traced(hub.store.conn, lambda: nightly.run(hub, do_backup=False))
    assert len(statements) > 20
    assert offenders(pg_dsn, statements) == []


def test_every_sqlite_index_exists_on_postgresql(tmp_path: Path, pg_dsn: str) -> None:
    sqlite_store = HubStore.create(tmp_path / "hub")
    try:
        wanted = {
            str(name)
            for (name,) in sqlite_store.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
                " AND tbl_name NOT LIKE '\\_%' ESCAPE '\\'"
            )
        }
    finally:
        sqlite_store.close()
    PgHubStore.open_at(pg_dsn).close()
    with psycopg.connect(pg_dsn) as conn:
        held = {str(name) for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname='public'")}
    assert len(wanted) > 20
    assert sorted(wanted - held) == []
