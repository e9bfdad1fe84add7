"""`sanji hub add-staff`, `disable-staff`, `enable-staff` and `staff` (issue 16), as an operator types
them: the password on standard input, refusals in Chinese with stable codes, listings without hashes,
and nothing of the password kept anywhere in the hub's folder."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.service import Hub
from sanji.cli import main
from sync.staff_grant import parse_grant_key
from sync.staff_password import check_password
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

PASSWORD = "zhangsan-口令-2026"
V1 = "T1-V1"


@pytest.fixture
def hub_dir(make_world: Callable[..., World]) -> Path:
    w = make_world(("T1", "township", ""), (V1, "village", "T1"))
    return w.root / "hub"


Run = Callable[..., tuple[int, Any, str]]


@pytest.fixture
def sanji(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`sanji ARGS... --json` with ``stdin`` on standard input: (exit code, JSON document, stderr)."""

    def run(*args: object, stdin: str = "") -> tuple[int, Any, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main([*(str(a) for a in args), "--json"])
        out = capsys.readouterr()
        return code, json.loads(out.out) if out.out.strip() else None, out.err

    return run


def add(sanji: Run, hub_dir: Path, user: str = "zhangsan", password: str = PASSWORD, *extra: str) -> tuple[int, Any]:
    code, doc, _ = sanji(
        "hub", "add-staff", hub_dir, "--station", V1, "--user", user, "--name", "张三", *extra, stdin=password + "\n"
    )
    return code, doc


def held(hub_dir: Path, user: str = "zhangsan", station: str = V1) -> Any:
    hub = Hub.open(hub_dir)
    try:
        return hub.store.staff_account(station, user)
    finally:
        hub.close()


def test_add_staff_keeps_a_hash_and_a_grant_key_never_the_password(sanji: Run, hub_dir: Path) -> None:
    assert add(sanji, hub_dir) == (0, {"station": V1, "user": "zhangsan"})
    account = held(hub_dir)
    assert account.enabled and account.role == "staff" and account.name == "张三"
    assert check_password(PASSWORD, account.password_hash), "the station checks the password against this"
    assert not check_password(PASSWORD + "x", account.password_hash)
    assert parse_grant_key(account.grant_key) is not None
    assert account.grant_key.split("$")[4] != account.password_hash.split("$")[4], "a salt of its own"
    kept = b"".join(p.read_bytes() for p in hub_dir.rglob("*") if p.is_file())
    assert PASSWORD.encode() not in kept


def test_an_administrator_may_be_made_for_a_station(sanji: Run, hub_dir: Path) -> None:
    assert add(sanji, hub_dir, "wang", PASSWORD, "--role", "admin")[0] == 0
    assert held(hub_dir, "wang").role == "admin"


@pytest.mark.parametrize(
    "args, password, code, words",
    [
        (["--station", "T9-V9", "--user", "zhangsan"], PASSWORD, "unknown_station", "区局没有登记站点 T9-V9"),
        (["--station", V1, "--user", "Zhang San"], PASSWORD, "bad_user", "用户名"),
        (["--station", V1, "--user", "zhangsan"], "short", "password_too_short", "密码太短"),
        (["--station", V1, "--user", "zhangsan"], "", "password_too_short", "密码太短"),
    ],
)
def test_add_staff_refuses_in_chinese_with_a_stable_code(
    sanji: Run, hub_dir: Path, args: list[str], password: str, code: str, words: str
) -> None:
    exit_code, doc, err = sanji("hub", "add-staff", hub_dir, *args, "--name", "张三", stdin=password + "\n")
    assert exit_code == 2 and doc["error"] == code and doc["reason"].startswith(words), doc
    assert err.startswith("sanji: ")
    assert held(hub_dir) is None, "nothing was made"


def test_an_empty_display_name_is_refused(sanji: Run, hub_dir: Path) -> None:
    exit_code, doc, _ = sanji(
        "hub", "add-staff", hub_dir, "--station", V1, "--user", "zhangsan", "--name", " ", stdin=PASSWORD
    )
    assert exit_code == 2 and doc["error"] == "bad_user" and "姓名" in doc["reason"]


def test_the_same_user_twice_at_a_station_is_refused_and_the_first_kept(sanji: Run, hub_dir: Path) -> None:
    add(sanji, hub_dir)
    before = held(hub_dir)
    exit_code, doc = add(sanji, hub_dir, "zhangsan", "another-password")
    assert exit_code == 2 and doc["error"] == "staff_exists" and "enable-staff" in doc["reason"]
    assert held(hub_dir) == before
    code, doc, _ = sanji(
        "hub", "add-staff", hub_dir, "--station", "T1", "--user", "zhangsan", "--name", "张三", stdin=PASSWORD
    )
    assert code == 0, "another station may have its own zhangsan"


def test_disable_then_enable_with_a_new_password(sanji: Run, hub_dir: Path) -> None:
    add(sanji, hub_dir)
    first = held(hub_dir)
    code, doc, _ = sanji("hub", "disable-staff", hub_dir, "--station", V1, "--user", "zhangsan")
    assert (code, doc) == (0, {"station": V1, "user": "zhangsan", "enabled": False})
    disabled = held(hub_dir)
    assert not disabled.enabled and disabled.version > first.version
    assert disabled.password_hash == first.password_hash

    code, doc, _ = sanji("hub", "enable-staff", hub_dir, "--station", V1, "--user", "zhangsan", stdin="short")
    assert code == 2 and doc["error"] == "password_too_short"
    assert held(hub_dir) == disabled

    code, doc, _ = sanji("hub", "enable-staff", hub_dir, "--station", V1, "--user", "zhangsan", stdin="new-口令-2027\n")
    assert (code, doc) == (0, {"station": V1, "user": "zhangsan", "enabled": True})
    enabled = held(hub_dir)
    assert enabled.enabled and enabled.version > disabled.version
    assert check_password("new-口令-2027", enabled.password_hash) and not check_password(
        PASSWORD, enabled.password_hash
    )
    assert enabled.grant_key != first.grant_key


@pytest.mark.parametrize("command", ["disable-staff", "enable-staff"])
def test_an_unknown_account_or_station_is_refused(sanji: Run, hub_dir: Path, command: str) -> None:
    code, doc, _ = sanji("hub", command, hub_dir, "--station", V1, "--user", "nobody", stdin=PASSWORD)
    assert code == 2 and doc["error"] == "unknown_user" and "nobody" in doc["reason"]
    code, doc, _ = sanji("hub", command, hub_dir, "--station", "T9-V9", "--user", "nobody", stdin=PASSWORD)
    assert code == 2 and doc["error"] == "unknown_station"


def test_the_listing_shows_accounts_and_never_a_hash(
    sanji: Run, hub_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, _ = sanji("hub", "staff", hub_dir)
    assert (code, doc) == (0, {"staff": []})
    add(sanji, hub_dir)
    sanji("hub", "add-staff", hub_dir, "--station", "T1", "--user", "lisi", "--name", "李四", stdin=PASSWORD)
    sanji("hub", "disable-staff", hub_dir, "--station", "T1", "--user", "lisi")

    code, doc, _ = sanji("hub", "staff", hub_dir)
    assert code == 0
    assert [(r["station"], r["user"], r["name"], r["role"], r["enabled"]) for r in doc["staff"]] == [
        ("T1", "lisi", "李四", "staff", False),
        (V1, "zhangsan", "张三", "staff", True),
    ]
    assert all(set(r) == {"station", "user", "name", "role", "enabled", "version", "changed_at"} for r in doc["staff"])
    assert "scrypt" not in json.dumps(doc)
    code, doc, _ = sanji("hub", "staff", hub_dir, "--station", V1)
    assert [r["user"] for r in doc["staff"]] == ["zhangsan"]
    code, doc, _ = sanji("hub", "staff", hub_dir, "--station", "T9")
    assert code == 2 and doc["error"] == "unknown_station"

    capsys.readouterr()
    assert main(["hub", "staff", str(hub_dir)]) == 0
    text = capsys.readouterr().out
    assert "zhangsan  张三  工作人员  启用" in text and "lisi  李四  工作人员  已停用" in text
    assert "scrypt" not in text
