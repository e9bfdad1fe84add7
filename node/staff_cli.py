"""Who is at the keyboard, for the station's commands (issue 16): ``--staff USER`` with the password on
the first line of standard input, the first administrator at ``node init --admin`` and ``node add-admin``.

A station that never had an account works exactly as before: its changes name no author and nobody
signs in. Once it has one, every command that changes or reveals a citizen's data signs the person
in through ``node/staff_accounts.py`` (its lock-out, disabled accounts and wrong passwords refuse
with their own codes) and the change carries their user name; without ``--staff`` the command is
refused (``staff_required``) and says what to add. ``sync``, ``status``, ``serve``, ``import`` and
``export`` never ask: they move what is written and reveal nothing. ``passwd`` changes the person's
own password (``node/staff_password.py``), or with ``--user`` an administrator resets a colleague's
(``node/staff_reset.py``).

The session lives for one command: the station holds it while the command runs (its writes seal
personal values with the data key) and ``Station.close`` ends it, so the key is not kept longer.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node import at_rest_arrivals, staff_accounts, staff_password, staff_reset
from node.staff_session import idle_ms_for
from node.station import Station
from present.output import emit
from replica.errors import Refused

# The commands that write a change or show a citizen's full ID number or phone.
# ``inspect`` copies the applicant's address and phone into the task: at a station that seals at rest
# that needs the signed-in session's key (node/at_rest.py).
NAMED_COMMANDS = ("accept", "transition", "supplement", "inspect", "report", "applications", "tasks")

STAFF_REQUIRED = (
    "本站已启用工作人员账户，改动或查看群众信息须署名：请加上 --staff 您的用户名，并在标准输入第一行给出密码"
    "（如 echo 密码 | sanji node … --staff zhangsan）(this station has staff accounts: add --staff USER, "
    "password on stdin)"
)

# `passwd` at a station nobody signs in to: "no such user" would send them hunting for a name.
NO_ACCOUNTS = (
    "本站还没有工作人员账户，不用密码：建立首个管理员请用 echo 密码 | sanji node add-admin 本站文件夹 --user 用户名 "
    "--name 姓名，或请区局用 sanji hub add-staff 建立后同步 (this station has no staff accounts)"
)


def has_accounts(conn: sqlite3.Connection) -> bool:
    """Whether the station has any staff account, enabled or not (then changes must name their
    author). Disabled ones count: a station whose only account the hub disabled must not fall back
    to the open window of a station that never had accounts; it waits for an enabled one."""
    return conn.execute("SELECT 1 FROM staff LIMIT 1").fetchone() is not None


def read_password(what: str = "密码", *, second: bool = False, pair: bool = False) -> str:
    """The next line of standard input, without its line end: never a command-line argument, which
    other users of the PC could read in the process list and the shell's history. ``second`` names
    the second line in the refusal, so ``passwd`` does not tell the user to put it on the first;
    ``pair``: the command reads two lines (``passwd``), so its example shows both."""
    line = sys.stdin.readline() if sys.stdin is not None else ""
    password = line.rstrip("\r\n")
    if not password:
        example = (
            "（如 printf '%s\\n%s\\n' 第一行密码 第二行新密码 | sanji node passwd …）"
            if second or pair
            else "（如 echo 密码 | sanji node …）"
        )
        where = f"标准输入{'第二行' if second else '第一行'}给出{example}"
        raise Refused(f"没有读到{what}：请在{where}(password expected on stdin)", code="password_required")
    return password


def sign_in(st: Station, user: str, password: str) -> staff_accounts.StaffSession:
    return staff_accounts.sign_in(
        st.db, station=st.code, user=user, password=password, now_ms=st.clock(), idle_ms=idle_ms_for(st.folder)
    )


def author(st: Station, args: argparse.Namespace) -> str:
    """The user name the command's changes carry: the signed-in ``--staff``, or ``""`` at a station
    without accounts. Refuses (lock-out, disabled, wrong password, ``staff_required``) otherwise."""
    user = str(getattr(args, "staff", None) or "")
    if not user:
        if has_accounts(st.conn):
            raise Refused(STAFF_REQUIRED, code="staff_required")
        return ""
    session = sign_in(st, user, read_password())
    if st.session is not None:
        st.session.end()
    # The station holds it for this command only: its writes seal personal values with the data key
    # (node/at_rest.py) and Station.close ends it, so the key is not kept past the command.
    st.session = session
    after_sign_in(st)
    return session.user


def after_sign_in(st: Station) -> None:
    """Seal what arrived while nobody was signed in, or what a station kept before it had a key (the
    migration, node/at_rest_arrivals.py); say so when plaintext was sealed, since older backups still
    hold it."""
    done = at_rest_arrivals.on_sign_in(
        st, progress=lambda n: print(f"正在加密保存群众信息：已检查 {n} 条变更", file=sys.stderr)
    )
    if done.get("plaintext"):
        print(at_rest_arrivals.BACKUP_NOTICE, file=sys.stderr)


def audit_reveal(st: Station, args: argparse.Namespace, action: str, target: str) -> None:
    """``--reveal`` at a station with accounts: sign in, and write who looked to ``ui_audit`` as the
    window does. A station without accounts reveals as before."""
    who = author(st, args)
    if not who:
        return
    with st.transaction():
        st.conn.execute(
            "INSERT INTO ui_audit (at_ms, staff, action, target, reason) VALUES (?,?,?,?,?)",
            (st.clock(), who, action, target, "命令行 --reveal"),
        )


# -- the first administrator -----------------------------------------------------------------------


@dataclass(frozen=True)
class FirstAdmin:
    user: str
    name: str
    password: str


def admin_request(args: argparse.Namespace) -> FirstAdmin | None:
    """``node init --admin USER --admin-name NAME``, checked (password read too) before anything is
    made, so a short password does not leave a half-initialised station behind."""
    user = str(getattr(args, "admin", None) or "")
    name = str(getattr(args, "admin_name", None) or "")
    if not user and not name:
        return None
    if not user or not name:
        raise Refused(
            "首个管理员须同时给出 --admin 用户名 和 --admin-name 姓名 (give both --admin and --admin-name)",
            code="bad_user",
        )
    password = read_password("管理员密码")
    staff_accounts.check_new(user, name, password)
    return FirstAdmin(user, name, password)


def first_admin(folder: Path, admin: FirstAdmin) -> dict[str, object]:
    st = Station(folder)
    try:
        session = staff_accounts.create_first_admin(
            st.db, station=st.code, user=admin.user, name=admin.name, password=admin.password, now_ms=st.clock()
        )
        session.end()
        return {"station": st.code, "user": admin.user, "name": session.name}
    finally:
        st.close()


def cmd_add_admin(args: argparse.Namespace) -> None:
    admin = FirstAdmin(args.user, args.name, read_password("管理员密码"))
    staff_accounts.check_new(admin.user, admin.name, admin.password)
    out = first_admin(args.dir, admin)
    emit(out, args.json, lambda d: f"站点 {d['station']} 已建立首个管理员 {d['name']}（{d['user']}）")


def _station_with_accounts(folder: str) -> Station:
    """The station at ``folder``, open, when it has staff accounts; a password command refuses otherwise
    (naming where accounts come from)."""
    st = Station(folder)
    if not has_accounts(st.conn):
        st.close()
        raise Refused(NO_ACCOUNTS, code="unknown_user")
    return st


def cmd_passwd(args: argparse.Namespace) -> None:
    """``sanji node passwd DIR --staff USER``: the current password on the first line of stdin, the new
    one on the second (``node/staff_password.py``). With ``--user COLLEAGUE`` the administrator's own
    password comes first and the colleague's is reset (``node/staff_reset.py``)."""
    colleague = str(getattr(args, "user", None) or "")
    if colleague and colleague != args.staff:
        reset_colleague(args, colleague)
        return
    old = read_password("当前密码", pair=True)
    new = read_password("新密码", second=True)
    st = _station_with_accounts(args.dir)
    try:
        out = staff_password.change(st, user=args.staff, old=old, new=new)
    finally:
        st.close()
    emit(
        {"station": out["station"], "user": out["user"]},
        args.json,
        lambda d: (
            f"工作人员 {d['user']} 的密码已修改"
            + ("；下次同步时报区行政审批局" if out["travels"] else "")
            + "。旧密码从此不能再登录。"
        ),
    )


def reset_colleague(args: argparse.Namespace, colleague: str) -> None:
    """``sanji node passwd DIR --staff ADMIN --user COLLEAGUE``: the administrator's password on the first
    line of stdin, the colleague's new one on the second."""
    admin_password = read_password("管理员本人的密码", pair=True)
    new = read_password("同事的新密码", second=True)
    st = _station_with_accounts(args.dir)
    try:
        out = staff_reset.reset(st, admin=args.staff, admin_password=admin_password, user=colleague, new=new)
    finally:
        st.close()
    emit(
        {"station": out["station"], "user": out["user"], "by": out["by"]},
        args.json,
        lambda d: (
            f"管理员 {d['by']} 已重设工作人员 {d['user']} 的密码并解除登录暂停"
            + ("；下次同步时报区行政审批局" if out["travels"] else "")
            + "。旧密码从此不能再登录。"
        ),
    )


def add_arguments(parsers: Mapping[str, argparse.ArgumentParser], cmd: Callable[[str, str], Any]) -> None:
    """``--staff`` on the commands that name their author, ``--admin`` on init, and ``add-admin``."""
    for name in NAMED_COMMANDS:
        what = "查看完整信息时" if name in ("applications", "tasks") else ""
        parsers[name].add_argument(
            "--staff", default="", help=f"{what}署名的工作人员用户名（本站启用账户后必填；密码从标准输入第一行读取）"
        )
    init = parsers["init"]
    init.add_argument("--admin", default="", help="同时建立本站首个管理员：用户名（密码从标准输入第一行读取）")
    init.add_argument("--admin-name", default="", help="首个管理员的姓名")
    p = cmd("add-admin", "为还没有工作人员账户的本站建立首个管理员（密码从标准输入第一行读取）")
    p.add_argument("--user", required=True, help="用户名：小写字母开头，只含小写字母、数字和 _ . -")
    p.add_argument("--name", required=True, help="姓名，如 张三")
    p = cmd(
        "passwd",
        "修改本人密码：标准输入第一行为当前密码，第二行为新密码；"
        "管理员加 --user 重设同事密码：第一行为管理员本人密码，第二行为同事的新密码",
    )
    p.add_argument("--staff", required=True, help="要修改密码的工作人员用户名（本人）；重设同事密码时为管理员本人")
    p.add_argument("--user", default="", help="管理员重设其密码的同事用户名（同时解除登录暂停）")
