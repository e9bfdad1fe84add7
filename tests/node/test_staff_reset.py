"""`sanji node passwd DIR --staff ADMIN --user COLLEAGUE` (issue 16): an administrator resets a
colleague's password at the station. The administrator's password on the first line of stdin, the
colleague's new one on the second. The colleague's hash and copy of the data key change together and
their lock-out is cleared, so they sign in with the new password (and read what was sealed) and not
with the old; for a hub-made account a signed ``staff`` change authored by the administrator waits in
the outbox (tests/hub/test_staff_reset_up.py follows it to the hub). Anyone but the station's
administrator is refused in Chinese with a stable code, and nothing changes."""

from __future__ import annotations

import pytest

from hub import staff
from node import data_key, staff_accounts, staff_schema
from node.staff_lockout import MAX_FAILURES
from node.station import Station
from sync.staff_change import STAFF_ENTITY
from sync.staff_password import check_password
from tests.conftest import World
from tests.node.staff_helpers import (
    ADMIN_PASSWORD,
    CHEAP,
    STAFF_PASSWORD,
    T0,
    account_of,
    run,
    signs_in,
    staff_change_at,
    with_staff,
)

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"
WANG, LISI, ZHAO = "wang-admin-pw-1", "lisi-first-pw", "zhao-first-pw"
NEW = "lisi-由管理员重设-2027"


def reset(capsys: pytest.CaptureFixture[str], st: Station, by: str, pw: str, user: str) -> tuple[int, dict]:
    return run(capsys, "node", "passwd", str(st.folder), "--staff", by, "--user", user, stdin=f"{pw}\n{NEW}\n")


def hub_made(world: World, st: Station) -> None:
    """A station whose accounts the hub made: an administrator and two colleagues, each holding the key."""
    for user, role, pw in (("wang", "admin", WANG), ("lisi", "staff", LISI), ("zhao", "staff", ZHAO)):
        staff.add_staff(world.hub, station=st.code, user=user, name=f"名{user}", role=role, password=pw, params=CHEAP)
    world.pull(st)
    for user, pw in (("wang", WANG), ("lisi", LISI), ("zhao", ZHAO)):
        assert signs_in(st, user, pw) == "ok"  # the first draws the key, the others redeem their grants


def test_an_administrators_reset_writes_the_signed_change_and_the_colleague_signs_in_with_the_new_password(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_made(world, village)
    for _ in range(MAX_FAILURES):
        assert signs_in(village, "lisi", "not-the-password") == "wrong_password"
    assert signs_in(village, "lisi", LISI) == "locked_out"
    version, seq = account_of(village, "lisi").hub_version, village.meta.int("seq")

    code, out = reset(capsys, village, "wang", WANG, "lisi")
    assert code == 0 and out == {"station": VILLAGE, "user": "lisi", "by": "wang"}
    assert village.meta.int("seq") == seq + 1, "one change waits in the outbox"
    written, raw = staff_change_at(village, seq + 1, user="lisi", author="wang", seen=version)
    assert check_password(NEW, written["password_hash"]) and NEW.encode() not in raw
    held = account_of(village, "lisi")
    assert held.password_seen == version and held.locked_until_ms == 0 and not held.failed_at

    assert signs_in(village, "lisi", LISI) == "wrong_password", "the old password is retired at once"
    session = staff_accounts.sign_in(village.db, station=VILLAGE, user="lisi", password=NEW, now_ms=village.clock())
    try:
        assert data_key.key_check(session.data_key(village.clock()), VILLAGE) == staff_schema.key_check(village.conn)
    finally:
        session.end()
    assert signs_in(village, "wang", WANG) == "ok", "the administrator's own password is untouched"


def test_a_colleague_who_is_not_an_administrator_is_refused_and_nothing_changes(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_made(world, village)
    before, seq = account_of(village, "lisi"), village.meta.int("seq")
    code, out = reset(capsys, village, "zhao", ZHAO, "lisi")
    assert code == 2 and out["error"] == "not_admin"
    assert "只有本站管理员可以重设同事的密码" in str(out["reason"])
    code, out = reset(capsys, village, "wang", "not-wangs-password", "lisi")
    assert code == 2 and out["error"] == "wrong_password", "the administrator signs in first, counted as such"
    code, out = reset(capsys, village, "wang", WANG, "nobody")
    assert code == 2 and out["error"] == "unknown_user"
    # (the administrator's sign-in sealed lisi's pending grant, as every sign-in does; nothing else moved)
    assert account_of(village, "lisi").password_hash == before.password_hash and village.meta.int("seq") == seq
    assert signs_in(village, "lisi", LISI) == "ok"
    assert signs_in(village, "lisi", LISI) == "ok"


def test_without_user_it_stays_the_persons_own_change(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_made(world, village)
    code, out = run(capsys, "node", "passwd", str(village.folder), "--staff", "lisi", stdin=f"{LISI}\n{NEW}\n")
    assert code == 0 and out == {"station": VILLAGE, "user": "lisi"}
    author = village.conn.execute("SELECT author FROM changes WHERE entity=? ORDER BY seq DESC", (STAFF_ENTITY,))
    assert author.fetchone()[0] == "lisi"
    code, out = run(capsys, "node", "passwd", str(village.folder), "--staff", "zhao", "--user", "zhao", stdin=ZHAO)
    assert code == 2 and out["error"] == "password_required", "--user naming oneself is one's own change"


def test_an_account_the_hub_disabled_is_re_enabled_only_at_the_hub(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_made(world, village)
    staff.disable_staff(world.hub, station=VILLAGE, user="lisi")
    world.pull(village)
    seq = village.meta.int("seq")
    code, out = reset(capsys, village, "wang", WANG, "lisi")
    assert code == 2 and out["error"] == "disabled" and "sanji hub enable-staff" in str(out["reason"])
    assert not account_of(village, "lisi").enabled and village.meta.int("seq") == seq


def test_a_local_administrator_resets_a_local_colleague_here_and_cannot_reset_a_hub_made_one(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = with_staff(village.db, VILLAGE)  # local: made here, unknown to the hub
    staff_accounts.disable(village.db, station=VILLAGE, user="zhangsan", by=admin, now_ms=T0)
    seq = village.meta.int("seq")
    code, out = reset(capsys, village, "admin", ADMIN_PASSWORD, "zhangsan")
    assert code == 0 and out["user"] == "zhangsan"
    assert village.meta.int("seq") == seq, "a local account's password stays at the station"
    assert account_of(village, "zhangsan").enabled, "enabled again, as the library's enable always did"
    assert signs_in(village, "zhangsan", NEW) == "ok" and signs_in(village, "zhangsan", STAFF_PASSWORD) != "ok"

    staff.add_staff(world.hub, station=VILLAGE, user="lisi", name="李四", role="staff", password=LISI, params=CHEAP)
    world.pull(village)
    before = account_of(village, "lisi")
    code, out = reset(capsys, village, "admin", ADMIN_PASSWORD, "lisi")
    assert code == 2 and out["error"] == "staff_not_self", "the hub would hold it: the station refuses to write it"
    # (the administrator's sign-in sealed lisi's pending grant, as every sign-in does; nothing else moved)
    assert account_of(village, "lisi").password_hash == before.password_hash and village.meta.int("seq") == seq
    assert signs_in(village, "lisi", LISI) == "ok"
