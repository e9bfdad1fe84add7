"""Two probes watch the real code without changing what it does: every merge into any replica's records
(``replica.records.Run.add``) and every re-issue of a station's changes under a new epoch
(``node.epoch._reissue``) are reported to the replica's watcher, which is how the checkers see each
step as it happens. They are put in while a world is open and taken out when the last one closes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from node import epoch
from node.station import Station
from protocol.codec import unpack
from replica import records
from sync.change import Change
from sync.fold import Record

Key = tuple[str, str]
Watch = Callable[[Key, Record, Record, Change], None]


WATCHERS: dict[int, Watch] = {}  # id of a replica's connection -> what to tell about each merge
REISSUED: dict[Path, Callable[[list[Change]], None]] = {}  # by station folder: restore opens its own


_OPEN: list[int] = [0]  # worlds open with the probes in (a test may hold one open while another runs)


def install_probes() -> Callable[[], None]:
    """Put the probes in; the function returned takes them out again once no world needs them."""
    _OPEN[0] += 1
    if not getattr(records.Run.add, "sim_probe", False):
        _probe()
    return _take_out


def _take_out() -> None:
    _OPEN[0] -= 1
    if _OPEN[0] == 0 and getattr(records.Run.add, "sim_probe", False):
        records.Run.add = records.Run.add.real  # type: ignore[attr-defined,method-assign]
        epoch._reissue = epoch._reissue.real  # type: ignore[attr-defined]


def _probe() -> None:
    add, reissue = records.Run.add, epoch._reissue

    def watched_add(run: records.Run, change: Change) -> tuple[int, Change, str] | None:
        key = (change.entity, change.id)
        before = run.record(*key)
        entry = add(run, change)
        watch = WATCHERS.get(id(run.store.conn))
        if entry is not None and watch is not None:
            watch(key, before, run.cache[key], change)
        return entry

    def watched_reissue(st: Station, old: int, first: int) -> int:
        n = reissue(st, old, first)
        wrote = REISSUED.get(st.folder)
        if wrote is not None and n:
            new = st.meta.int("epoch")
            rows = st.conn.execute(
                "SELECT origin, epoch, seq, hlc, entity, rid, fields, base FROM changes"
                " WHERE origin=? AND epoch=? ORDER BY seq",
                (st.code, new),
            ).fetchall()
            wrote([_change(r) for r in rows])
        return n

    watched_add.sim_probe = True  # type: ignore[attr-defined]
    watched_add.real, watched_reissue.real = add, reissue  # type: ignore[attr-defined]
    records.Run.add = watched_add  # type: ignore[method-assign]
    epoch._reissue = watched_reissue


def _change(r: tuple[object, ...]) -> Change:
    fields, base = unpack(bytes(r[6])), unpack(bytes(r[7]))  # type: ignore[arg-type]
    assert isinstance(fields, dict) and isinstance(base, dict)
    return Change(str(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5]), fields, base)  # type: ignore[call-overload]
