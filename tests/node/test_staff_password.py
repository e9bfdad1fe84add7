"""`sanji node passwd DIR --staff USER` (issue 16: "password change works as on the dashboard"): the
current password on the first line of stdin, the new one on the second. The station's data key is
wrapped afresh under the new password in the same transaction as the new hash, so what was sealed
before opens with the new password and no longer with the old; a wrong current password counts
towards the lock-out exactly as a failed sign-in; a paused, disabled or too-short case is refused in
Chinese with a stable code and changes nothing. A local account's change stays at the station; a
hub-made account's travels up as a signed change (tests/hub/test_staff_password_up.py follows it to
the hub). Applicants are generated (tests.conftest.People)."""

from __future__ import annotations

import pytest

from hub import staff
from node import data_key, staff_accounts, staff_password, staff_schema
from node.staff_lockout import MAX_FAILURES
from node.station import Station
from replica.errors import Refused
from sync.staff_grant import parse_grant_key
from sync.staff_password import check_password
from tests.conftest import World
from tests.node.staff_helpers import (
    ADMIN_PASSWORD,
    CHEAP,
    STAFF_PASSWORD,
    T0,
    account_of,
    run,
    staff_change_at,
    with_staff,
)

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"
ITEM = "360802-0009"  # 高龄津贴申领: promised, the bank card may be deferred
CARD = "银行卡"
NEW = "新的管理员口令-2027"


def passwd(capsys: pytest.CaptureFixture[str], st: Station, user: str, old: str, new: str) -> tuple[int, dict]:
    return run(capsys, "node", "passwd", str(st.folder), "--staff", user, stdin=f"{old}\n{new}\n")


def accept(world: World, st: Station, capsys: pytest.CaptureFixture[str], password: str) -> dict[str, object]:
    p = world.people.applicant()
    args = ["node", "accept", str(st.folder), "--item", ITEM, "--name", p["name"], "--id-number", p["id_number"]]
    args += ["--phone", p["phone"], "--address", "测试路1号", "--defer", CARD, "--staff", "admin"]
    for m in world.application(ITEM, st=st, deferred=[CARD]).submitted:
        args += ["--material", m]
    code, out = run(capsys, *args, stdin=password + "\n")
    assert code == 0, out
    return {**out, "id_number": p["id_number"]}


def test_the_new_password_opens_what_was_sealed_and_the_old_one_opens_nothing(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    with_staff(village.db, VILLAGE)
    accepted = accept(world, village, capsys, ADMIN_PASSWORD)
    raw = village.conn.execute("SELECT fields FROM changes WHERE entity='application' LIMIT 1").fetchone()[0]
    assert str(accepted["id_number"]).encode() not in bytes(raw), "sealed at rest before the change"
    before = account_of(village, "admin")
    seq = village.meta.int("seq")

    code, out = passwd(capsys, village, "admin", ADMIN_PASSWORD, NEW)
    assert code == 0 and out == {"station": VILLAGE, "user": "admin"}
    after = account_of(village, "admin")
    assert check_password(NEW, after.password_hash) and not check_password(ADMIN_PASSWORD, after.password_hash)
    assert after.wrapped_key is not None and after.wrapped_key != before.wrapped_key
    check = staff_schema.key_check(village.conn)
    key = data_key.unwrap(after.wrapped_key, NEW, station=VILLAGE, user="admin", check=check)
    with pytest.raises(Refused) as wrong:
        data_key.unwrap(after.wrapped_key, ADMIN_PASSWORD, station=VILLAGE, user="admin", check=check)
    assert wrong.value.code == "key_tampered"
    assert data_key.key_check(key, VILLAGE) == check, "the same data key, wrapped afresh"
    assert village.meta.int("seq") == seq, "a local account's password stays at the station"

    code, out = run(
        capsys, "node", "applications", str(village.folder), "--reveal", "--staff", "admin", stdin=NEW + "\n"
    )
    assert code == 0
    assert [a["applicant_id"] for a in out["applications"]] == [accepted["id_number"]]  # type: ignore[index]
    code, out = run(
        capsys, "node", "applications", str(village.folder), "--reveal", "--staff", "admin", stdin=ADMIN_PASSWORD + "\n"
    )
    assert code == 2 and out["error"] == "wrong_password"
    assert "密码不正确" in str(out["reason"])


def test_a_wrong_current_password_counts_towards_the_lock_out_as_a_failed_sign_in(
    village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    with_staff(village.db, VILLAGE)
    before = account_of(village, "zhangsan")
    for left in range(MAX_FAILURES - 1, 0, -1):
        code, out = passwd(capsys, village, "zhangsan", "not-the-password", NEW)
        assert code == 2 and out["error"] == "wrong_password"
        assert f"再错 {left} 次将暂停登录" in str(out["reason"])
    code, out = passwd(capsys, village, "zhangsan", "not-the-password", NEW)
    assert code == 2 and "已暂停登录 15 分钟" in str(out["reason"])
    # Paused: even the right password changes nothing until the window has passed, and it says when.
    code, out = passwd(capsys, village, "zhangsan", STAFF_PASSWORD, NEW)
    assert code == 2 and out["error"] == "locked_out"
    assert "分钟后再试" in str(out["reason"])
    assert account_of(village, "zhangsan").password_hash == before.password_hash
    assert account_of(village, "zhangsan").wrapped_key == before.wrapped_key


@pytest.mark.parametrize(
    ("stdin", "code"),
    [
        (f"{STAFF_PASSWORD}\nshort\n", "password_too_short"),
        (f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n", "password_unchanged"),
        (f"{STAFF_PASSWORD}\n", "password_required"),
        ("", "password_required"),
    ],
)
def test_a_new_password_that_breaks_the_rules_changes_nothing(
    village: Station, capsys: pytest.CaptureFixture[str], stdin: str, code: str
) -> None:
    with_staff(village.db, VILLAGE)
    before = account_of(village, "zhangsan")
    status, out = run(capsys, "node", "passwd", str(village.folder), "--staff", "zhangsan", stdin=stdin)
    assert status == 2 and out["error"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(out["reason"])), "the reason is told in Chinese"
    assert account_of(village, "zhangsan") == before


def test_a_disabled_account_cannot_change_its_password(village: Station, capsys: pytest.CaptureFixture[str]) -> None:
    admin = with_staff(village.db, VILLAGE)
    staff_accounts.disable(village.db, station=VILLAGE, user="zhangsan", by=admin, now_ms=T0)
    code, out = passwd(capsys, village, "zhangsan", STAFF_PASSWORD, NEW)
    assert code == 2 and out["error"] == "disabled"
    assert "已停用" in str(out["reason"])


def test_a_hub_made_account_writes_a_signed_change_with_the_new_hash_and_never_the_password(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    staff.add_staff(
        world.hub, station=VILLAGE, user="lisi", name="李四", role="staff", password="lisi-first-pw", params=CHEAP
    )
    world.pull(village)
    version = account_of(village, "lisi").hub_version
    seq = village.meta.int("seq")
    code, out = passwd(capsys, village, "lisi", "lisi-first-pw", "lisi-second-pw")
    assert code == 0 and out == {"station": VILLAGE, "user": "lisi"}
    assert village.meta.int("seq") == seq + 1
    written, raw = staff_change_at(village, seq + 1, user="lisi", author="lisi", seen=version)
    assert check_password("lisi-second-pw", written["password_hash"])
    assert parse_grant_key(written["grant_key"]) is not None
    assert b"lisi-second-pw" not in raw and "lisi-second-pw".encode("utf-16-le") not in raw
    assert account_of(village, "lisi").password_seen == version


def test_the_library_halves_refuse_when_the_account_changed_in_between(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    staff.add_staff(
        world.hub, station=VILLAGE, user="lisi", name="李四", role="staff", password="lisi-first-pw", params=CHEAP
    )
    world.pull(village)
    prepared = staff_password.prepare(
        village.db, station=VILLAGE, user="lisi", old="lisi-first-pw", new="lisi-second-pw", now_ms=village.clock()
    )
    staff.enable_staff(world.hub, station=VILLAGE, user="lisi", password="reset-by-the-hub", params=CHEAP)
    world.pull(village)  # the hub's reset lands between the two halves
    seq = village.meta.int("seq")
    with pytest.raises(Refused) as refused:
        staff_password.store(village, prepared)
    assert refused.value.code == "staff_changed"
    assert village.meta.int("seq") == seq
    assert check_password("reset-by-the-hub", account_of(village, "lisi").password_hash)
