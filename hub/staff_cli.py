"""`sanji hub add-staff`, `disable-staff`, `enable-staff` and `staff`: station staff accounts made at
the hub (hub/staff.py). Passwords come on standard input, one line, never as an argument."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub import staff
from hub.service import Hub
from present.output import emit


def add_commands(cmd: Any) -> None:
    p = cmd("add-staff", "为站点建立工作人员账户；密码从标准输入读取，随该站下次同步送达（只送密码的散列）")
    p.add_argument("--station", required=True, help="站点编码")
    p.add_argument("--user", required=True, help="登录用户名（小写字母开头，如 zhangsan）")
    p.add_argument("--name", required=True, help="姓名（如 张三）")
    p.add_argument(
        "--role", default="staff", choices=["staff", "admin"], help="staff（工作人员，默认）或 admin（站点管理员）"
    )
    p = cmd("disable-staff", "停用站点的工作人员账户，该站下次同步后生效")
    p.add_argument("--station", required=True, help="站点编码")
    p.add_argument("--user", required=True, help="登录用户名")
    p = cmd("enable-staff", "重新启用站点的工作人员账户并重设密码；新密码从标准输入读取")
    p.add_argument("--station", required=True, help="站点编码")
    p.add_argument("--user", required=True, help="登录用户名")
    p = cmd("staff", "列出站点的工作人员账户（不含密码散列）")
    p.add_argument("--station", help="只列出这个站点的账户")


def _hub(args: argparse.Namespace) -> Hub:
    return Hub.open(args.dir)


def _password_from_stdin() -> str:
    """One line of standard input: the password is never an argument (shells keep those in history)."""
    return sys.stdin.readline().rstrip("\r\n")


def cmd_add_staff(args: argparse.Namespace) -> None:
    out = staff.add_staff(
        _hub(args),
        station=args.station,
        user=args.user,
        name=args.name,
        role=args.role,
        password=_password_from_stdin(),
    )
    emit(
        {"station": out["station"], "user": out["user"]},
        args.json,
        lambda d: f"已为站点 {d['station']} 建立工作人员账户 {d['user']}（{out['name']}），该站下次同步后即可登录",
    )


def cmd_disable_staff(args: argparse.Namespace) -> None:
    out = staff.disable_staff(_hub(args), station=args.station, user=args.user)
    emit(
        {"station": out["station"], "user": out["user"], "enabled": False},
        args.json,
        lambda d: f"已停用站点 {d['station']} 的工作人员账户 {d['user']}，该站下次同步后生效",
    )


def cmd_enable_staff(args: argparse.Namespace) -> None:
    out = staff.enable_staff(_hub(args), station=args.station, user=args.user, password=_password_from_stdin())
    emit(
        {"station": out["station"], "user": out["user"], "enabled": True},
        args.json,
        lambda d: f"已重新启用站点 {d['station']} 的工作人员账户 {d['user']} 并重设密码，该站下次同步后生效",
    )


def cmd_staff(args: argparse.Namespace) -> None:
    emit({"staff": staff.staff_list(_hub(args), args.station)}, args.json, staff.staff_text)
