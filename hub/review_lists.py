"""The conflicts and quarantine lists as the dashboard pages them: grouped by station (how many each
station has, and one station's rows at a time when the operator picks it), newest first, a page at a
time by keyset (never OFFSET), so ten years of them cost what one page does.

A conflict belongs to the station that accepted its application; a held change to the station that
sent it. The queries are the read model's (``hub/reads/review.py``), run in its thread over the
:class:`ReadHub` given; the row shapes are the ones ``hub/operations.conflicts`` and
``hub/quarantine_review.quarantine_rows`` give the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.operations import conflict_row
from hub.quarantine_review import quarantine_row
from hub.reads.review import Key, checked

if TYPE_CHECKING:
    from hub.reads import ReadHub

PAGE_SIZE = 50


@dataclass
class Listed:
    rows: list[dict[str, Any]]
    total: int
    groups: list[tuple[str, int]]  # (station code, how many), most first
    newer: Key | None = None
    older: Key | None = None


def conflicts(
    hub: ReadHub, *, show_all: bool = False, station: str = "", older: Key | None = None, newer: Key | None = None
) -> Listed:
    older, newer = checked(older), checked(newer)
    raw = hub.reads.conflict_page(show_all=show_all, station=station, older=older, newer=newer, limit=PAGE_SIZE + 1)
    more = len(raw) > PAGE_SIZE
    raw = raw[:PAGE_SIZE]
    if newer is not None:
        raw.reverse()
    rows = [{**conflict_row(*r[:10]), "station": r.station, "detected_hlc": r.detected_hlc} for r in raw]
    keys = [(str(r["detected_hlc"]), str(r["id"])) for r in rows]
    groups = hub.reads.conflicts_per_station(show_all=show_all)
    total = sum(n for code, n in groups if not station or code == station)
    return Listed(rows, total, groups, *_ends(keys, more, older, newer))


def quarantine(
    hub: ReadHub, *, show_all: bool = False, station: str = "", older: Key | None = None, newer: Key | None = None
) -> Listed:
    older, newer = checked(older), checked(newer)
    raw = hub.reads.held_page(show_all=show_all, station=station, older=older, newer=newer, limit=PAGE_SIZE + 1)
    more = len(raw) > PAGE_SIZE
    raw = raw[:PAGE_SIZE]
    if newer is not None:
        raw.reverse()
    rows = [quarantine_row(*r) for r in raw]
    keys = [(str(r["id"]), str(r["id"])) for r in rows]  # the id orders them; a key needs two parts
    groups = hub.reads.held_per_station(show_all=show_all)
    total = sum(n for code, n in groups if not station or code == station)
    return Listed(rows, total, groups, *_ends(keys, more, older, newer))


def _ends(keys: list[Key], more: bool, older: Key | None, newer: Key | None) -> tuple[Key | None, Key | None]:
    """(newer, older): the keys the previous and next page links start from, None where there is none."""
    if not keys:
        return None, None
    if newer is not None:
        return (keys[0] if more else None), keys[-1]
    return (keys[0] if older is not None else None), (keys[-1] if more else None)
