"""What the nightly report counts without reading every application (issue 20): the per-station
statistics kept by triggers (``station_statistics``, hub/schema.py) and the numbers held twice,
re-checked from what changed (hub/nightly_numbers.py). Each is compared with the whole-table answer the
report used to compute, on a hub whose applications were accepted, moved, completed and decided on
both sides."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from hub import nightly_numbers
from hub.nightly_report import statistics
from hub.operations import transition
from node import commands
from tests.ui.conftest import ITEM_PROMISED
from tests.ui.inproc import Pair

# The report's statistics as one GROUP BY over every application: what the kept counts must equal.
WHOLE_TABLE = (
    "SELECT station, COUNT(*), COALESCE(SUM(kind = 'immediate'), 0),"
    " COALESCE(SUM(status IN ('completed', 'delivered')), 0),"
    " COALESCE(SUM(status IN ('completed', 'delivered') AND (due_date IS NULL OR due_date = ''"
    " OR date((updated_hlc >> 16) / 1000 + 8 * 3600, 'unixepoch') <= due_date)), 0)"
    " FROM applications GROUP BY station"
)
# The same count in PostgreSQL's words (booleans do not sum; the day is computed, not date()'d).
WHOLE_TABLE_PG = (
    "SELECT station, COUNT(*), COUNT(*) FILTER (WHERE kind = 'immediate'),"
    " COUNT(*) FILTER (WHERE status IN ('completed', 'delivered')),"
    " COUNT(*) FILTER (WHERE status IN ('completed', 'delivered') AND (due_date IS NULL OR due_date = ''"
    " OR to_char(DATE '1970-01-01' + (((updated_hlc >> 16) / 1000 + 8 * 3600) / 86400)::int, 'YYYY-MM-DD')"
    " <= due_date)) FROM applications GROUP BY station"
)


@pytest.fixture(params=["sqlite", "postgres"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """The hub on either backend: PostgreSQL keeps the counts with triggers of its own."""
    p = Pair(tmp_path, database=request.getfixturevalue("pg_dsn") if request.param == "postgres" else None)
    yield p
    p.close()


def _kept(pair: Pair) -> dict[str, tuple[int, int, int, int]]:
    out: dict[str, list[int]] = {}
    for station, immediate, closed, on_time, n in pair.hub.store.conn.execute(
        "SELECT station, immediate, closed, on_time, n FROM station_statistics WHERE n != 0"
    ):
        row = out.setdefault(str(station), [0, 0, 0, 0])
        row[0] += n
        row[1] += n if immediate else 0
        row[2] += n if closed else 0
        row[3] += n if on_time else 0
    return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}


def _whole(pair: Pair) -> dict[str, tuple[int, int, int, int]]:
    sql = WHOLE_TABLE if isinstance(pair.hub.store.conn, sqlite3.Connection) else WHOLE_TABLE_PG
    return {str(s): (n, i, c, o) for s, n, i, c, o in pair.hub.store.conn.execute(sql)}


def test_kept_statistics_equal_a_count_of_every_application(pair: Pair) -> None:
    immediate = [str(pair.accept()["number"]) for _ in range(3)]
    promised = [str(pair.accept(ITEM_PROMISED)["number"]) for _ in range(3)]
    pair.push()
    assert _kept(pair) == _whole(pair)
    assert sum(n for n, *_ in _kept(pair).values()) == 6

    commands.transition(pair.st, immediate[0], "completed")  # at the window, synced later
    transition(pair.hub, immediate[1], "completed")  # each command its own transaction
    for step in ("under_review", "approved", "completed"):
        transition(pair.hub, promised[0], step, override_reason="踏勘报告为纸质，已存档")
    transition(pair.hub, promised[1], "under_review")
    pair.push()
    pair.pull()
    kept = _kept(pair)
    assert kept == _whole(pair)
    (station,) = kept
    total, n_immediate, closed, on_time = kept[station]
    assert (total, n_immediate, closed) == (6, 3, 3)
    assert on_time == 3  # all closed well within their limits, today

    # The report reads the kept counts: the same figures as the whole-table count gave.
    stats = statistics(pair.hub, date.today())
    row = next(s for s in stats["per_station"] if s["station"] == station)
    assert (row["accepted"], row["immediate"], row["promised"], row["completed"], row["on_time"]) == (6, 3, 3, 3, 3)


def test_numbers_held_twice_are_found_from_what_changed_and_kept_until_mended(pair: Pair) -> None:
    first = pair.accept()
    pair.push()
    assert nightly_numbers.refresh(pair.hub) == []

    # A second application under the first one's number, as a station's raw copy-back makes one.
    number = str(first["number"])
    with pair.hub.store.transaction():
        pair.hub.write("application", "copied-back-1", {"number": number, "station": pair.st.code}, {}, check=False)
    found = nightly_numbers.refresh(pair.hub)
    assert [(d["number"], d["count"]) for d in found] == [(number, 2)]
    assert "copied-back-1" in found[0]["ids"]

    # Nothing changed since: the number is still listed (kept), though no change names it now.
    assert [d["number"] for d in nightly_numbers.refresh(pair.hub)] == [number]

    # Renumbered: the next check drops it.
    with pair.hub.store.transaction():
        pair.hub.write("application", "copied-back-1", {"number": number + "-2"}, {}, check=False)
    assert nightly_numbers.refresh(pair.hub) == []
    assert pair.hub.store.conn.execute("SELECT COUNT(*) FROM nightly_duplicate_numbers").fetchone()[0] == 0
