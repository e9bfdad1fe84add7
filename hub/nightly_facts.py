"""What the morning report needs from inside records, kept in two small tables by the nightly job.

Deferred (容缺) materials live in an application's ``m.<name>`` cells and scores in rating records;
reading them for the report meant unpacking every open application's record and every rating, every
night (10 s at 100,000 applications). The nightly job instead keeps
- ``nightly_materials``: one row per material an application holds as deferred, with its due day;
- ``nightly_ratings``: one row per rating, with its application's station, score and comment,
refreshed from the records whose changes were logged since the last refresh (the log's rowid above
the mark ``nightly_facts_rowid`` in ``hub_meta``). The first refresh on a hub reads every record once.

The records are read outside any transaction and each chunk is written in a short one, so the
serving hub's writers are never held up for long. A record changed after the refresh read it has a
change logged above the new mark, so the next refresh reads it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from protocol.codec import unpack

if TYPE_CHECKING:
    from hub.service import Hub
    from hub.store import HubStore

MARK = "nightly_facts_rowid"
CHUNK = 500
ENTITIES = ("application", "rating")


def _cell(state: dict[str, object], name: str) -> object:
    cell = state.get(name)
    return cell[2] if isinstance(cell, list) and len(cell) > 2 else None


def _write(store: HubStore, rows: Sequence[tuple[str, str, bytes, str]]) -> None:
    apps = [rid for entity, rid, _, _ in rows if entity == "application"]
    materials: list[tuple[str, str, str]] = []
    ratings: list[tuple[str, str, str | None, int | None, object]] = []
    for entity, rid, state, application in rows:
        raw = unpack(state)
        assert isinstance(raw, dict)
        if entity == "application":
            for name in raw:
                value = _cell(raw, name)
                deferred = isinstance(value, list) and len(value) > 1 and value[0] == "deferred" and value[1]
                if name.startswith("m.") and deferred:
                    materials.append((rid, name[2:], str(value[1])))  # type: ignore[index]
        else:
            score = _cell(raw, "score")
            ratings.append(
                (
                    rid,
                    application,
                    store.station_of(application),
                    score if isinstance(score, int) else None,
                    _cell(raw, "comment"),
                )
            )
    store.put_facts(apps, materials, ratings)


def _refresh_keys(hub: Hub, keys: Iterable[tuple[str, str]]) -> int:
    store = hub.store
    by_entity: dict[str, list[str]] = {}
    for entity, rid in keys:
        if entity in ENTITIES:
            by_entity.setdefault(entity, []).append(rid)
    done = 0
    for entity, ids in by_entity.items():
        for i in range(0, len(ids), CHUNK):
            part = ids[i : i + CHUNK]
            rows = store.record_states(entity, part)
            found = {r[1] for r in rows}
            # A record that is gone keeps no deferred material and counts as no rating.
            gone = [rid for rid in part if rid not in found]
            with store.transaction():
                store.forget_facts(entity, gone)
                _write(store, rows)
            done += len(part)
    return done


def _rebuild(hub: Hub) -> int:
    """Every application and rating, a chunk at a time in key order (the first refresh on a hub)."""
    store = hub.store
    with store.transaction():
        store.clear_facts()
    done = 0
    for entity in ENTITIES:
        after = ""
        while rows := store.record_states_after(entity, after, CHUNK):
            with store.transaction():
                _write(store, rows)
            after = rows[-1][1]
            done += len(rows)
    return done


def refresh(hub: Hub, also: Iterable[tuple[str, str]] = ()) -> dict[str, int]:
    """Bring both tables up to the log as it stands now; ``also`` names records rewritten otherwise
    (the re-fold's repairs). Returns how many records were read and whether it was a first build."""
    store = hub.store
    mark = store.get_meta(MARK)
    upto = store.last_change_rowid()
    if not isinstance(mark, int):
        read, rebuilt = _rebuild(hub), 1
    else:
        touched = store.records_changed(mark, upto, ENTITIES)
        read, rebuilt = _refresh_keys(hub, sorted({*touched, *also})), 0
    with store.transaction():
        store.set_meta(MARK, upto)
    return {"records_read": read, "rebuilt": rebuilt}


__all__ = ["MARK", "refresh"]
