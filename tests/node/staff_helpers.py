"""Shared set-up for the staff-account and sealed-data tests: a real station store in a temporary
folder, and a cheap scrypt cost so the suite does not spend seconds on key derivation (one test in
``test_staff_accounts.py`` runs the real default cost end to end)."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from node import staff_accounts
from node.staff_session import StaffSession
from node.store import create_store
from sync.staff_password import ScryptParams
from tests.conftest import START_MS

CHEAP = ScryptParams(n=2**10, r=8, p=1)
STATION = "360802-T01-05"
OTHER_STATION = "360802-T01-06"
ADMIN_PASSWORD = "管理员口令-2026"
STAFF_PASSWORD = "zhangsan-pass-1"
T0 = START_MS


def station(folder: Path) -> sqlite_utils.Database:
    return create_store(folder)


def first_admin(db: sqlite_utils.Database, code: str = STATION, *, now_ms: int = T0) -> StaffSession:
    return staff_accounts.create_first_admin(
        db, station=code, user="admin", name="王站长", password=ADMIN_PASSWORD, now_ms=now_ms, params=CHEAP
    )


def with_staff(db: sqlite_utils.Database, code: str = STATION) -> StaffSession:
    """A station with its first administrator and one ordinary member, ``zhangsan``."""
    admin = first_admin(db, code)
    staff_accounts.add_staff(
        db,
        station=code,
        user="zhangsan",
        name="张三",
        password=STAFF_PASSWORD,
        role="staff",
        by=admin,
        now_ms=T0,
        params=CHEAP,
    )
    return admin


def sign_in(
    db: sqlite_utils.Database, user: str, password: str, *, now_ms: int = T0, code: str = STATION
) -> StaffSession:
    return staff_accounts.sign_in(db, station=code, user=user, password=password, now_ms=now_ms)


def wrapped_key(db: sqlite_utils.Database, user: str) -> bytes | None:
    row = db.conn.execute("SELECT wrapped_key FROM staff WHERE user=?", (user,)).fetchone()
    return None if row[0] is None else bytes(row[0])


def set_wrapped_key(db: sqlite_utils.Database, user: str, blob: bytes | None) -> None:
    db.conn.execute("UPDATE staff SET wrapped_key=? WHERE user=?", (blob, user))
