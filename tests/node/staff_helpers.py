"""Shared set-up for the staff-account and sealed-data tests: a real station store in a temporary
folder, and a cheap scrypt cost so the suite does not spend seconds on key derivation (one test in
``test_staff_accounts.py`` runs the real default cost end to end); ``sanji`` run in-process with a
password on stdin, and what an account's sign-in answers."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from node import staff_accounts, staff_schema
from node.staff_session import StaffSession
from node.station import Station
from node.store import create_store
from protocol.codec import unpack
from replica.errors import Refused
from sanji.cli import main as sanji
from sync.staff_change import STAFF_ENTITY
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


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, dict[str, object]]:
    """``sanji ARGV --json`` in-process with ``stdin`` (passwords come that way): its exit code and its
    JSON answer, whether it went to stdout or (a refusal) to stderr."""
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = sanji([*argv, "--json"])
    finally:
        sys.stdin = old
    captured = capsys.readouterr()
    text = captured.out.strip() or captured.err.strip()
    return code, (json.loads(text) if text.startswith("{") else {"text": text})


def signs_in(st: Station, user: str, password: str) -> str:
    """``ok``, or the code of the refusal, for a sign-in (and at once a sign-out) at the station."""
    try:
        staff_accounts.sign_in(st.db, station=st.code, user=user, password=password, now_ms=st.clock()).end()
    except Refused as exc:
        return exc.code
    return "ok"


def account_of(st: Station, user: str) -> staff_schema.Account:
    found = staff_schema.account(st.conn, user)
    assert found is not None
    return found


def staff_change_at(st: Station, seq: int, *, user: str, author: str, seen: int) -> tuple[dict[str, Any], bytes]:
    """The change at ``seq`` of the station's own chain, checked to be ``user``'s signed ``staff`` change
    by ``author`` (the new hash, grant key and the hub version the station had seen, nothing else) and
    to carry what the station now holds: its fields, and their bytes (to look for the password in)."""
    entity, rid, fields, by = st.conn.execute(
        "SELECT entity, rid, fields, author FROM changes WHERE origin=? AND seq=?", (st.code, seq)
    ).fetchone()
    assert (entity, rid, by) == (STAFF_ENTITY, f"{st.code}/{user}", author)
    written = unpack(bytes(fields))
    assert set(written) == {"password_hash", "grant_key", "seen"} and written["seen"] == seen
    held = account_of(st, user)
    assert held.password_hash == written["password_hash"] and held.grant_key == written["grant_key"]
    return written, bytes(fields)
