"""What the staff end-to-end tests read from the folders the real processes wrote: the scrypt hash the
hub holds for an account (on SQLite or PostgreSQL alike), and whether an account signs in at a station
(``ok`` or the refusal's code)."""

from __future__ import annotations

from node import staff_accounts
from node.store import open_store
from replica.errors import Refused
from replica.ids import now_ms as wall_now_ms
from tests.hub_sql import hub_sql

from .conftest import Hub, Node


def hub_hash(hub: Hub, station: str, user: str) -> str:
    conn = hub_sql(hub.dir)
    try:
        row = conn.execute('SELECT password_hash FROM station_staff WHERE station=? AND "user"=?', (station, user))
        return str(row.fetchone()[0])
    finally:
        conn.close()


def signs_in(node: Node, user: str, password: str) -> str:
    db = open_store(node.dir)
    try:
        staff_accounts.sign_in(db, station=node.code, user=user, password=password, now_ms=wall_now_ms()).end()
        return "ok"
    except Refused as exc:
        return exc.code
    finally:
        db.conn.close()
