"""Numbers held by more than one application, for the morning report, from what changed.

Two applications share a number only after a station's raw copy-back (a station restored from an old
file numbers again from where that file stopped). Finding them was a GROUP BY over every application
each night. Instead the hub keeps the numbers found so far (``nightly_duplicate_numbers``, filled once
by the migration that made it) and each night re-checks only the numbers of the applications with a
change logged since the last check (the log's rowid above the mark ``nightly_numbers_rowid``), the
records the re-fold rewrote, and the numbers already listed (one of the pair may since have gone).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.service import Hub

MARK = "nightly_numbers_rowid"


def refresh(hub: Hub, also: Iterable[tuple[str, str]] = ()) -> list[dict[str, object]]:
    """Re-check what changed, keep the result, and return every number held twice with its holders."""
    store = hub.store
    mark = store.get_meta(MARK)
    upto = store.last_change_rowid()
    touched = store.applications_changed(mark if isinstance(mark, int) else 0, upto)
    touched |= {rid for entity, rid in also if entity == "application"}
    numbers = sorted(store.numbers_of(sorted(touched)) | store.listed_duplicate_numbers())
    twice = {n: ids for n, ids in store.holders_of(numbers).items() if len(ids) > 1}
    with store.transaction():
        store.relist_duplicate_numbers(numbers, twice)
        store.set_meta(MARK, upto)
    return [{"number": n, "count": len(ids), "ids": ids} for n, ids in sorted(twice.items())]


__all__ = ["MARK", "refresh"]
