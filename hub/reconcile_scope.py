"""What a station's scope is at the hub, as SQL: the changes it authored, the changes in its feed,
and its own changes held in quarantine (see ``hub/reconcile.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from replica.scope import CHANGE_COLS, Row, select_records, wire_rows
from sync.scope import record_key

if TYPE_CHECKING:
    from hub.service import Hub

OWN_SQL = f"SELECT {CHANGE_COLS} FROM changes c WHERE c.origin=?"
FED_SQL = f"SELECT {CHANGE_COLS} FROM feed f JOIN changes c ON c.rowid=f.change WHERE f.station=? AND c.origin!=?"
# A station's held changes stay in its scope whatever the operator decided: releasing one writes a new
# hub change (which reaches the station through its feed), never the held change itself.
HELD_SQL = "SELECT raw FROM quarantine WHERE origin=? AND whole_batch=0 AND sender IN (origin, '')"


def scope_rows(hub: Hub, station: str) -> list[Row]:
    conn = hub.store.conn
    rows: list[Row] = conn.execute(OWN_SQL, (station,)).fetchall()
    rows += conn.execute(FED_SQL, (station, station)).fetchall()
    rows += list(wire_rows(bytes(r[0]) for r in conn.execute(HELD_SQL, (station,))))
    return rows


def records_for(hub: Hub, station: str, keys: list[str]) -> list[Row]:
    conn = hub.store.conn
    rows = select_records(conn, OWN_SQL, (station,), keys)
    rows += select_records(conn, FED_SQL, (station, station), keys)
    wanted = set(keys)
    rows += [
        r
        for r in wire_rows(bytes(x[0]) for x in conn.execute(HELD_SQL, (station,)))
        if record_key(r[4], r[5]) in wanted
    ]
    return rows
