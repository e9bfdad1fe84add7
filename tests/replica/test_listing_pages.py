"""The lists page by keyset (issue 20): walking the page links visits every matching application exactly
once, newest first, in both directions; the total is the number that matches; the due-date filters in
SQL pick exactly the rows ``due_state`` marks; the kept per-station counts equal a count of the rows;
and the streamed CLI listing is byte for byte the JSON document it was before streaming.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from node import commands
from present.output import emit, emit_rows
from present.webui import due_state, soon_until
from replica import listing
from tests.ui.conftest import ITEM_IMMEDIATE, ITEM_PROMISED
from tests.ui.inproc import Pair

TODAY = date.today()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """A station with 31 applications accepted over the last ten weeks; some closed, some overdue."""
    p = Pair(Path(tmp_path_factory.mktemp("listing")))
    for i in range(31):
        day = TODAY - timedelta(days=70 - 2 * i)
        item = ITEM_PROMISED if i % 3 else ITEM_IMMEDIATE
        out = p.accept(item, accepted_at=f"{day.isoformat()}T09:{i:02d}:00+08:00")
        if i % 5 == 0:
            commands.transition(p.st, str(out["number"]), "withdrawn")
    # Two accepted in the same second: the number breaks the tie, so neither is skipped nor repeated.
    for _ in range(2):
        p.accept(ITEM_PROMISED, accepted_at=f"{(TODAY - timedelta(days=3)).isoformat()}T10:00:00+08:00")
    yield p
    p.close()


def _filters(p: Pair, **kw: str) -> listing.Filters:
    cal = p.st.catalogue().catalogue.calendar
    return listing.Filters(today=TODAY.isoformat(), soon_until=soon_until(TODAY, cal).isoformat(), **kw)


def _everything(p: Pair) -> list[dict[str, object]]:
    rows = listing.list_applications(p.st.conn)
    return sorted(rows, key=lambda r: (str(r["accepted_at"]), str(r["number"])), reverse=True)


def _walk(p: Pair, f: listing.Filters, size: int) -> tuple[list[list[str]], list[int]]:
    pages, totals, key = [], [], None
    while True:
        found = listing.page(p.st.conn, f, older_than=key, size=size)
        pages.append([str(r["number"]) for r in found.rows])
        totals.append(found.total)
        if found.older is None:
            return pages, totals
        key = found.older


def test_walking_older_then_newer_visits_every_row_once_in_order(pair: Pair) -> None:
    f = _filters(pair)
    pages, totals = _walk(pair, f, size=7)
    expected = [str(r["number"]) for r in _everything(pair)]
    assert [n for pg in pages for n in pg] == expected and len(expected) == 33
    assert set(totals) == {33} and len(pages) == 5
    # Back up from the last page by its "newer" links: the same pages, in reverse.
    found = listing.page(pair.st.conn, f, older_than=listing.page(pair.st.conn, f, size=28).older, size=7)
    back = [[str(r["number"]) for r in found.rows]]
    while found.newer is not None:
        found = listing.page(pair.st.conn, f, newer_than=found.newer, size=7)
        back.append([str(r["number"]) for r in found.rows])
    assert back[::-1] == pages
    first = listing.page(pair.st.conn, f, size=7)
    assert first.newer is None and first.older is not None


@pytest.mark.parametrize("due", ["overdue", "soon", "open"])
def test_due_filters_pick_exactly_what_due_state_marks(pair: Pair, due: str) -> None:
    cal = pair.st.catalogue().catalogue.calendar
    want = []
    for r in _everything(pair):
        state = due_state(r["due_date"], r["status"], TODAY, cal).state
        if state == due or (due == "open" and state not in ("closed",)):
            want.append(str(r["number"]))
    pages, totals = _walk(pair, _filters(pair, due=due), size=4)
    assert [n for pg in pages for n in pg] == want
    assert totals[0] == len(want)
    if due == "overdue":
        assert want, "the fixture has overdue applications"


def test_status_and_text_filters_page_and_count(pair: Pair) -> None:
    pages, totals = _walk(pair, _filters(pair, status="withdrawn"), size=3)
    withdrawn = [str(r["number"]) for r in _everything(pair) if r["status"] == "withdrawn"]
    assert [n for pg in pages for n in pg] == withdrawn and totals[0] == len(withdrawn) == 7
    closed_overdue = listing.page(pair.st.conn, _filters(pair, status="withdrawn", due="overdue"))
    assert closed_overdue.rows == [] and closed_overdue.total == 0  # a withdrawn file is never overdue
    name = str(_everything(pair)[5]["applicant_name"])
    hit = listing.page(pair.st.conn, _filters(pair, q=name))
    assert [r["applicant_name"] for r in hit.rows] == [name] and hit.total == 1
    number = str(_everything(pair)[9]["number"])
    exact = listing.page(pair.st.conn, _filters(pair, q=number))
    assert [r["number"] for r in exact.rows] == [number] and exact.total == 1
    part = listing.page(pair.st.conn, _filters(pair, q=number[:-1]))  # its start: found by an index range
    assert number in [r["number"] for r in part.rows] and part.total >= 1
    surname = name[:1]  # the start of a name: every name that begins with it, and only those
    starts = [r for r in _everything(pair) if str(r["applicant_name"]).startswith(surname)]
    assert listing.page(pair.st.conn, _filters(pair, q=surname)).total == len(starts) > 1
    assert listing.page(pair.st.conn, _filters(pair, q=name[1:])).total == 0  # the middle of a name is not


def test_malformed_keys_are_the_first_page(pair: Pair) -> None:
    assert listing.key_of("no-separator") is None and listing.key_of("~x") is None
    key = listing.key_of(listing.key_text(("2026-01-01T00:00:00+08:00", "N-1")))
    assert key == ("2026-01-01T00:00:00+08:00", "N-1")


def test_kept_counts_equal_a_count_of_the_rows(pair: Pair) -> None:
    conn = pair.st.conn
    counted = dict(conn.execute("SELECT station, COUNT(*) FROM applications GROUP BY station").fetchall())
    assert listing.station_counts(conn) == counted and listing.held(conn) == 33
    per_status = conn.execute("SELECT status, COUNT(*) FROM applications GROUP BY status").fetchall()
    assert all(listing.held(conn, status=s) == n for s, n in per_status) and len(per_status) >= 2
    # A row rewritten (a transition, a refold's upsert) is not counted twice.
    withdrawn = listing.held(conn, status="withdrawn")
    commands.transition(pair.st, str(_everything(pair)[0]["number"]), "withdrawn")
    assert listing.held(conn) == 33 == listing.page(conn, _filters(pair)).total
    assert (
        listing.held(conn, status="withdrawn")
        == withdrawn + 1
        == listing.page(conn, _filters(pair, status="withdrawn")).total
    )
    with pytest.raises(ZeroDivisionError), pair.st.transaction():  # rolled back: the fixture is shared
        conn.execute("DELETE FROM applications WHERE number=?", (str(_everything(pair)[-1]["number"]),))
        assert listing.held(conn) == 32
        raise ZeroDivisionError
    assert listing.held(conn) == 33


def test_streamed_listing_is_the_same_json_document(
    pair: Pair, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = listing.list_applications(pair.st.conn)
    emit({"applications": rows}, True)
    whole = capsys.readouterr().out
    emit_rows("applications", listing.iter_applications(pair.st.conn), True, str, "")
    assert capsys.readouterr().out == whole
    emit_rows("applications", iter([]), True, str, "")
    assert json.loads(capsys.readouterr().out) == {"applications": []}
    emit_rows("applications", iter([]), False, str, "（无办件）")
    assert capsys.readouterr().out == "（无办件）\n"
    monkeypatch.setattr("sys.stdout", io.StringIO())
    with pytest.raises(listing.Refused):
        emit_rows("applications", listing.iter_applications(pair.st.conn, status="bogus"), True, str, "")
