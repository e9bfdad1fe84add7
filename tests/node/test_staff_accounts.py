"""Staff accounts at a station, offline (issue 16): the first administrator, sign-in and each of its
refusals, the lock-out window, password changes, disabling and enabling, and idle sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from node import data_key, staff_accounts, staff_lockout, staff_schema
from node.sealed_fields import Sealer
from node.staff_session import DEFAULT_IDLE_MS, idle_ms_for
from node.store import open_store
from protocol.codec import unpack
from replica.errors import Refused
from sync.staff_password import DEFAULT_PARAMS
from tests.conftest import MINUTE_MS
from tests.node.staff_helpers import (
    ADMIN_PASSWORD,
    CHEAP,
    STAFF_PASSWORD,
    STATION,
    T0,
    first_admin,
    sign_in,
    station,
    with_staff,
    wrapped_key,
)


def refusal(excinfo: pytest.ExceptionInfo[Refused]) -> tuple[str, str]:
    return excinfo.value.code, str(excinfo.value)


def test_the_first_administrator_signs_in_and_unlocks_the_stations_key(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    made = first_admin(db)
    again = sign_in(db, "admin", ADMIN_PASSWORD, now_ms=T0 + MINUTE_MS)
    assert (again.user, again.name, again.role, again.station) == ("admin", "王站长", "admin", STATION)
    key = again.data_key(T0 + MINUTE_MS)
    assert key == made.data_key(T0) and len(key) == 32
    assert staff_schema.key_check(db.conn) == data_key.key_check(key, STATION)
    # The row holds a hash and a wrapped copy, never the password or the key.
    row = db.conn.execute("SELECT * FROM staff").fetchone()
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    assert ADMIN_PASSWORD.encode() not in stored and key not in stored
    assert "data_key" not in repr(again) and key.hex() not in repr(again)


def test_the_first_administrator_is_made_once(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    first_admin(db)
    with pytest.raises(Refused) as e:
        staff_accounts.create_first_admin(db, station=STATION, user="li", name="李四", password="x" * 8, now_ms=T0)
    assert e.value.code == "staff_exists"
    assert [a.user for a in staff_schema.accounts(db.conn)] == ["admin"]


def test_the_tables_exist_when_a_station_folder_opens_again(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    first_admin(db)
    db.conn.close()
    reopened = open_store(tmp_path / "V")
    assert [a.user for a in staff_schema.accounts(reopened.conn)] == ["admin"]


@pytest.mark.parametrize(
    ("user", "name", "password", "code"),
    [
        ("Zhang San", "张三", "long-enough", "bad_user"),
        ("zhangsan", " ", "long-enough", "bad_user"),
        ("zhangsan", "张三", "short", "password_too_short"),
    ],
)
def test_new_accounts_are_checked(tmp_path: Path, user: str, name: str, password: str, code: str) -> None:
    db = station(tmp_path / "V")
    admin = first_admin(db)
    with pytest.raises(Refused) as e:
        staff_accounts.add_staff(
            db,
            station=STATION,
            user=user,
            name=name,
            password=password,
            role="staff",
            by=admin,
            now_ms=T0,
            params=CHEAP,
        )
    assert e.value.code == code
    reason = str(e.value)
    assert "\u4e00" <= reason[0] <= "\u9fff" and reason.endswith(")")  # Chinese first, English in brackets
    assert [a.user for a in staff_schema.accounts(db.conn)] == ["admin"]


def test_a_wrong_password_is_refused_and_counted(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    with_staff(db)
    before = wrapped_key(db, "zhangsan")
    with pytest.raises(Refused) as e:
        sign_in(db, "zhangsan", "not-the-password")
    code, reason = refusal(e)
    assert code == "wrong_password" and reason.startswith("密码不正确") and "再错 4 次" in reason
    found = staff_schema.account(db.conn, "zhangsan")
    assert found is not None and found.failed_at == (T0,) and found.enabled
    assert wrapped_key(db, "zhangsan") == before  # nothing lost


def test_an_unknown_user_is_refused(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    with_staff(db)
    with pytest.raises(Refused) as e:
        sign_in(db, "lisi", STAFF_PASSWORD)
    code, reason = refusal(e)
    assert code == "unknown_user" and "lisi" in reason and "(no such staff account here)" in reason


def test_a_disabled_account_is_refused_even_with_the_right_password(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    admin = with_staff(db)
    staff_accounts.disable(db, station=STATION, user="zhangsan", by=admin, now_ms=T0 + 1)
    assert wrapped_key(db, "zhangsan") is None  # the right password alone can unlock nothing any more
    with pytest.raises(Refused) as e:
        sign_in(db, "zhangsan", STAFF_PASSWORD, now_ms=T0 + 2)
    assert refusal(e)[0] == "disabled" and "已停用" in str(e.value)
    # Even with the flag flipped back by hand (a database edited outside Sanji), there is no key.
    db.conn.execute("UPDATE staff SET enabled=1 WHERE user='zhangsan'")
    with pytest.raises(Refused) as e:
        sign_in(db, "zhangsan", STAFF_PASSWORD, now_ms=T0 + 3)
    assert e.value.code == "no_data_key"


def test_enabling_again_sets_a_new_password_and_grants_the_same_key(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    admin = with_staff(db)
    sealer = Sealer(admin.data_key(T0), STATION)
    sealed = sealer.seal("app-1", "name", "张测1")
    staff_accounts.disable(db, station=STATION, user="zhangsan", by=admin, now_ms=T0 + 1)
    staff_accounts.enable(
        db, station=STATION, user="zhangsan", password="a-new-start-2", by=admin, now_ms=T0 + 2, params=CHEAP
    )
    with pytest.raises(Refused):
        sign_in(db, "zhangsan", STAFF_PASSWORD, now_ms=T0 + 3)
    back = sign_in(db, "zhangsan", "a-new-start-2", now_ms=T0 + 4)
    assert Sealer(back.data_key(T0 + 4), STATION).open("app-1", "name", sealed) == "张测1"


def test_only_an_administrator_manages_accounts_and_the_last_one_stays(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    admin = with_staff(db)
    clerk = sign_in(db, "zhangsan", STAFF_PASSWORD)
    with pytest.raises(Refused) as e:
        staff_accounts.disable(db, station=STATION, user="admin", by=clerk, now_ms=T0)
    assert e.value.code == "not_admin"
    with pytest.raises(Refused) as e:
        staff_accounts.disable(db, station=STATION, user="admin", by=admin, now_ms=T0)
    assert e.value.code == "last_admin"
    assert staff_schema.account(db.conn, "admin") is not None
    assert wrapped_key(db, "admin") is not None


def test_five_wrong_passwords_pause_the_account_until_the_oldest_leaves_the_window(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    with_staff(db)
    times = [T0 + i * MINUTE_MS for i in range(staff_lockout.MAX_FAILURES)]
    for i, at in enumerate(times):
        with pytest.raises(Refused) as e:
            sign_in(db, "zhangsan", f"guess-{i}-wrong", now_ms=at)
        assert e.value.code == "wrong_password"
    assert "已暂停登录" in str(e.value)
    # Paused: the right password is refused too, and says for how long.
    with pytest.raises(Refused) as e:
        sign_in(db, "zhangsan", STAFF_PASSWORD, now_ms=times[-1] + 1)
    assert e.value.code == "locked_out" and "11 分钟" in str(e.value)
    # A guess while paused is not even checked, so it cannot extend the pause.
    found = staff_schema.account(db.conn, "zhangsan")
    assert found is not None and found.locked_until_ms == times[0] + staff_lockout.WINDOW_MS
    just_before = times[0] + staff_lockout.WINDOW_MS - 1
    with pytest.raises(Refused) as e:
        sign_in(db, "zhangsan", STAFF_PASSWORD, now_ms=just_before)
    assert e.value.code == "locked_out"
    # The oldest failure leaves the window: the right password works and the count is cleared.
    session = sign_in(db, "zhangsan", STAFF_PASSWORD, now_ms=times[0] + staff_lockout.WINDOW_MS)
    assert session.user == "zhangsan"
    found = staff_schema.account(db.conn, "zhangsan")
    assert found is not None and found.failed_at == () and found.locked_until_ms == 0


def test_failures_spread_beyond_the_window_never_pause(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    with_staff(db)
    for i in range(8):
        with pytest.raises(Refused) as e:
            sign_in(db, "zhangsan", "wrong-again", now_ms=T0 + i * 4 * MINUTE_MS)
        assert e.value.code == "wrong_password"
    assert sign_in(db, "zhangsan", STAFF_PASSWORD, now_ms=T0 + 8 * 4 * MINUTE_MS).user == "zhangsan"


def test_a_pause_is_one_users_only(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    with_staff(db)
    for i in range(staff_lockout.MAX_FAILURES):
        with pytest.raises(Refused):
            sign_in(db, "zhangsan", "wrong", now_ms=T0 + i)
    assert sign_in(db, "admin", ADMIN_PASSWORD, now_ms=T0 + 10).user == "admin"


def test_an_idle_session_locks_and_gives_the_key_out_no_more(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    with_staff(db)
    session = sign_in(db, "zhangsan", STAFF_PASSWORD)
    assert session.idle_ms == DEFAULT_IDLE_MS == 15 * MINUTE_MS
    session.touch(T0 + 14 * MINUTE_MS)  # used within the limit: the clock starts again
    assert session.data_key(T0 + 28 * MINUTE_MS)
    assert not session.live(T0 + 44 * MINUTE_MS)
    with pytest.raises(Refused) as e:
        session.data_key(T0 + 44 * MINUTE_MS)
    assert e.value.code == "session_locked" and "锁定" in str(e.value)
    short = staff_accounts.sign_in(
        db, station=STATION, user="zhangsan", password=STAFF_PASSWORD, now_ms=T0, idle_ms=MINUTE_MS
    )
    with pytest.raises(Refused):
        short.data_key(T0 + 2 * MINUTE_MS)
    ended = sign_in(db, "admin", ADMIN_PASSWORD)
    ended.end()
    with pytest.raises(Refused) as e:
        ended.data_key(T0)
    assert "已退出登录" in str(e.value)


def test_the_default_cost_is_recorded_beside_the_wrapped_key(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    made = staff_accounts.create_first_admin(
        db, station=STATION, user="admin", name="王站长", password=ADMIN_PASSWORD, now_ms=T0
    )
    doc = unpack(wrapped_key(db, "admin") or b"")
    assert isinstance(doc, dict)
    assert (doc["n"], doc["r"], doc["p"]) == (DEFAULT_PARAMS.n, DEFAULT_PARAMS.r, DEFAULT_PARAMS.p)
    assert (doc["station"], doc["user"]) == (STATION, "admin") and len(doc["salt"]) == 16
    found = staff_schema.account(db.conn, "admin")
    assert found is not None and found.password_hash.startswith(f"scrypt${DEFAULT_PARAMS.n}$8$1$")
    assert sign_in(db, "admin", ADMIN_PASSWORD).data_key(T0) == made.data_key(T0)


def test_the_idle_limit_is_configured_per_station(tmp_path: Path) -> None:
    folder = tmp_path / "V"
    folder.mkdir()
    assert idle_ms_for(folder) == 15 * MINUTE_MS
    (folder / "staff.json").write_text('{"idle_minutes": 5}', encoding="utf-8")
    assert idle_ms_for(folder) == 5 * MINUTE_MS
    for bad in ('{"idle_minutes": 0}', '{"idle_minutes": "15"}', '{"idle_minutes": 100000}', "[1]", "not json"):
        (folder / "staff.json").write_text(bad, encoding="utf-8")
        with pytest.raises(Refused) as e:
            idle_ms_for(folder)
        assert e.value.code == "bad_settings" and "idle_minutes" in str(e.value)
