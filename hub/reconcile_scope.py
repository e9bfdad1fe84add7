"""What a station's scope is at the hub: the changes it authored, the changes in its feed, and its
own changes held in quarantine (see ``hub/reconcile.py``), as rows of ``replica.scope.Row``.

A station's held changes stay in its scope whatever the operator decided: releasing one writes a new
hub change (which reaches the station through its feed), never the held change itself. The queries
are the store's (``hub/store/scope.py``, ``hub/store/quarantine.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from replica.scope import Row, wire_rows
from sync.scope import record_key

if TYPE_CHECKING:
    from hub.service import Hub


def held_rows(hub: Hub, station: str, after_id: int = 0, upto_id: int | None = None) -> list[Row]:
    """The station's own held changes (ids in (after_id, upto_id]) that read as changes."""
    return list(wire_rows(hub.store.own_held_raws(station, after_id, upto_id)))


def scope_rows(hub: Hub, station: str) -> list[Row]:
    rows = hub.store.own_change_rows(station)
    rows += hub.store.fed_change_rows(station)
    rows += held_rows(hub, station)
    return rows


def records_for(hub: Hub, station: str, keys: list[str]) -> list[Row]:
    rows = hub.store.own_change_rows(station, keys)
    rows += hub.store.fed_change_rows(station, keys)
    wanted = set(keys)
    rows += [r for r in held_rows(hub, station) if record_key(r[4], r[5]) in wanted]
    return rows
