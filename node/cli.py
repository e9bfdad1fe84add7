"""`sanji node ...`: thin commands over the station library (see CONTRACT.md for the outside shape)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from node import commands, enrolment, staff_cli, status, sync_lock, usb_files
from node.staff_cli import cmd_add_admin as cmd_add_admin  # dispatched by name
from node.station import Station
from node.supplement import add_command as add_supplement
from node.supplement import cmd_supplement as cmd_supplement  # dispatched by name
from node.sync_text import blob_text, print_progress
from present.listing import EMPTY, application_line
from present.output import EXIT_REFUSED, STATUS_CHOICES, command_adder, dispatch, emit, emit_rows
from present.webui import TIER_NAMES, status_label
from replica.errors import Refused, Unreachable
from replica.listing import iter_applications
from sync import catalogue_view


def add_parser(sub: Any) -> None:
    node = sub.add_parser("node", help="站点（村、社区、乡镇、街道）或踏勘设备").add_subparsers(
        dest="cmd", required=True
    )

    cmd = command_adder(node, "本站的文件夹（站点数据都在里面）")

    p = cmd("init", "生成本站密钥，向区局登记接入，固定区局密钥，下载事项目录")
    p.add_argument("--hub", default="", help="区局地址，如 http://10.1.2.3:8700（仅用U盘的站点不填）")
    p.add_argument("--token", help="区局 sanji hub enroll 发放的一次性令牌（用 --enrollment 时也要）")
    p.add_argument("--enrollment", type=Path, help="从区局带来的登记文件（没有网络时接入）")
    p = cmd("serve", "在本机 127.0.0.1 提供窗口工作页面，并在后台定时同步")
    p.add_argument("--port", type=int, default=8710, help="工作页面的端口（默认 8710）")
    p.add_argument("--interval", type=float, default=30.0, help="两轮同步之间的秒数（默认 30）")
    p.add_argument("--nightly", default="02:00", help="夜间任务的时间 HH:MM（默认 02:00）")
    p = cmd("accept", "受理一件申请（没有网络也可以）")
    p.add_argument("--item", help="事项编码（sanji node catalogue 列出本站可受理的事项）")
    p.add_argument("--name", help="申请人姓名")
    p.add_argument("--id-number", help="申请人身份证号")
    p.add_argument("--phone", help="申请人手机号")
    p.add_argument("--address", default="", help="地址（需现场踏勘的事项必填）")
    p.add_argument("--material", action="append", default=[], help="已收取的材料名称（每样一次，可重复）")
    p.add_argument("--defer", action="append", default=[], help="容缺后补的材料名称（可重复）")
    p.add_argument("--note", default="", help="备注")
    p.add_argument("--theme", default="", help="主题（一件事）编码，按主题受理时填")
    p.add_argument("--from", dest="from_file", type=Path, help="补录：文件中每行一件申请（JSON）")
    p = cmd("applications", "本站的办件")
    p.add_argument("--status", help="只列出这个状态的办件：" + STATUS_CHOICES)
    p.add_argument("--reveal", action="store_true", help="显示完整身份证号和手机号")
    p = cmd("transition", "本站办理一步：变更办件状态")
    p.add_argument("number", help="办件编号")
    p.add_argument("--to", required=True, help="变更为：" + STATUS_CHOICES)
    p.add_argument("--note", default="", help="说明（记入办件记录）")
    p.add_argument(
        "--override-reason", default="", help="需现场踏勘的事项在没有踏勘报告时准予许可的理由（记入审计记录）"
    )
    add_supplement(cmd)  # 补交材料 (node/supplement.py)
    p = cmd("inspect", "乡镇（街道）中心为本级决定的事项安排现场踏勘")
    p.add_argument("number", help="办件编号")
    p.add_argument("--inspector", required=True, help="踏勘设备的站点编码")
    p.add_argument("--due", help="踏勘期限 YYYY-MM-DD（默认今天起 5 个工作日）")
    p = cmd("sync", "立即同步一轮：先上传，再下载，再传照片；然后清理区局已收到的内容")
    p.add_argument(
        "--retention-days",
        type=int,
        default=None,
        help="区局收到后，踏勘设备上的副本再保留的天数（默认 7）",
    )
    p = cmd("tasks", "本踏勘设备的踏勘任务")
    p.add_argument("--reveal", action="store_true", help="显示申请人完整手机号")
    p = cmd("report", "记录踏勘报告（没有网络也可以）")
    p.add_argument("task", help="任务：办件编号、任务号，或二者唯一的开头（sanji node tasks 列出全部）")
    p.add_argument("--result", required=True, help="踏勘结论：pass（合格）、fail（不合格）或 rectify（需整改）")
    p.add_argument("--finding", action="append", required=True, help="现场发现的情况（可重复）")
    p.add_argument("--gps", help="定位：纬度,经度[,精度米]")
    p.add_argument("--photo", action="append", type=Path, default=[], help="照片文件（可重复）")
    p.add_argument("--signature", type=Path, help="申请人或见证人签名的扫描件")
    p.add_argument("--check", action="append", default=[], help="检查表第 N 项的回答：N=yes（是）或 N=no（否），可重复")
    p = cmd("purge", "保留期过后，删除区局已收到的照片和群众个人信息")
    p.add_argument("--retention-days", type=int, default=7, help="区局收到后保留的天数（默认 7）")
    p = cmd("export", "把待上传的变更写成文件，用U盘带到区局")
    p.add_argument("--out", type=Path, required=True, help="写到哪个文件夹（如U盘）")
    p = cmd("import", "导入从区局用U盘带来的文件")
    p.add_argument("paths", type=Path, nargs="+", help="文件或文件夹（如U盘）")
    cmd("status", "本站情况：待上传、最近同步、事项目录、区局密钥")
    cmd("reconcile", "立即与区局对账（比较摘要），补齐任一方缺少的数据")
    p = cmd("backup", "备份本站数据库（一致的副本）")
    p.add_argument("--out", type=Path, required=True, help="备份文件路径")
    p = cmd("restore", "从备份恢复本站；此后的变更换用新纪元编号，不会与已上传的重复")
    p.add_argument("--from", dest="source", type=Path, required=True, help="备份文件路径")
    p = cmd("receipts", "本站各批变更的送达情况（区局签名回执）")
    p = cmd("catalogue", "本站可受理的事项：材料（必交、可容缺后补）、承诺时限、是否需现场踏勘")
    p.add_argument(
        "--search", default="", help="只列出相符的事项：名称、编码、简称（如 低保）或拼音首字母（如 zdshbz）"
    )
    p = cmd("set-hub", "改用新的区局地址（区局迁址，或仅用 U 盘的站点通了网）；须能从本站固定的根密钥核验")
    p.add_argument("url", help="区局的新地址，如 http://10.1.2.3:8700")
    staff_cli.add_arguments(node.choices, cmd)  # --staff, init --admin, add-admin (issue 16)


def main(args: argparse.Namespace) -> int | None:
    return dispatch(globals(), args)


def cmd_init(args: argparse.Namespace) -> None:
    admin = staff_cli.admin_request(args)  # checked before the station is made
    if args.enrollment:
        out = enrolment.init_from_file(args.dir, args.enrollment, args.hub, args.token)
    elif args.hub and args.token:
        out = enrolment.init_online(args.dir, args.hub, args.token)
    else:
        raise Refused(
            "请给出 --hub 区局地址 --token 令牌；没有网络的站点给出 --enrollment 登记文件 --token 令牌"
            " (give --hub URL --token TOKEN, or --enrollment FILE --token TOKEN)"
        )
    if admin is not None:
        out["admin"] = staff_cli.first_admin(args.dir, admin)["user"]
    # Staff compare the pinned fingerprint with the one printed on the enrolment slip.
    emit(
        out,
        args.json,
        lambda d: (
            f"站点 {d['station']}（{TIER_NAMES.get(d['tier'], d['tier'])}）已接入，"
            f"事项目录版本 {d['catalogue_version']}\n"
            f"已核验并固定区局根密钥指纹 {d['hub_fingerprint']}（请与登记单核对）"
            + (f"\n已建立本站首个管理员 {d['admin']}" if d.get("admin") else "")
        ),
    )


def cmd_serve(args: argparse.Namespace) -> None:
    from node.server import serve

    serve(args.dir, port=args.port, interval=args.interval, nightly_at=args.nightly)


def cmd_accept(args: argparse.Namespace) -> int:
    st = Station(args.dir)
    author = staff_cli.author(st, args)
    if args.from_file:
        out = commands.accept_file(st, args.from_file, author=author)
        emit(
            out,
            args.json,
            lambda d: (
                f"补录受理 {d['accepted']} 件，退回 {len(d['refused'])} 行"
                + "".join(f"\n  第 {r['line']} 行: {r['reason']}" for r in d["refused"][:50])
                + (
                    "\n一件也没有受理：请按上面每行的原因改正后再补录（格式见 README 的“补录”一节）"
                    if not d["accepted"]
                    else ""
                )
            ),
        )
        return 0 if out["accepted"] else 2  # a file of which nothing was accepted is a refusal
    missing = [f for f in ("item", "name", "id_number", "phone") if not getattr(args, f)]
    if missing:
        raise Refused("缺少必填项：" + "、".join("--" + m.replace("_", "-") for m in missing) + "，请补上后重试")
    out = commands.accept(
        st,
        commands.Application(
            item=args.item,
            name=args.name,
            id_number=args.id_number,
            phone=args.phone,
            address=args.address,
            submitted=args.material,
            deferred=args.defer,
            note=args.note,
            theme=args.theme,
        ),
        author=author,
    )
    emit(
        out,
        args.json,
        lambda d: (
            f"已受理 办件编号 {d['number']}  状态 {status_label(d['status'])}  办结时限 {d['due_date']}"
            f"  查询码 {d['tracking_code']}"
        ),
    )
    return 0


def cmd_applications(args: argparse.Namespace) -> None:
    st = Station(args.dir)
    if args.reveal:
        staff_cli.audit_reveal(st, args, "cli_reveal", "applications")
    apps = iter_applications(st.conn, status=args.status, reveal=args.reveal)  # streamed, as the hub's
    if args.reveal:
        apps = commands.opened_rows(st, apps)  # sealed at rest: opened through the --staff session
    emit_rows("applications", apps, args.json, lambda a: application_line(a, accepted_at=False), EMPTY)


def cmd_transition(args: argparse.Namespace) -> None:
    st = Station(args.dir)
    author = staff_cli.author(st, args)
    emit(
        commands.transition(st, args.number, args.to, args.note, override_reason=args.override_reason, author=author),
        args.json,
        lambda d: f"{d['number']} → {status_label(d['status'])}",
    )


def cmd_sync(args: argparse.Namespace) -> int:
    st = Station(args.dir)
    # Weeks offline can mean thousands of changes over a slow link: at a terminal, say how far it got.
    progress = print_progress if sys.stderr.isatty() else None
    queued = st.pending_changes()
    try:
        result = asyncio.run(
            sync_lock.sync_round(st, wait_s=sync_lock.CLI_WAIT_S, retention_days=args.retention_days, progress=progress)
        )
    except KeyboardInterrupt:
        # Each batch is recorded as sent only when the hub's answer is committed, so an interrupted
        # round loses nothing: say how far it got rather than exiting silently (issue 14 item 16).
        left = Station(args.dir).pending_changes()
        print(
            f"同步已中断：本轮已上传 {queued - left} 条变更，{left} 条仍在队列中，下次同步会继续；没有数据丢失",
            file=sys.stderr,
            flush=True,
        )
        return 130
    out = {
        "pushed": result.pushed,
        "pulled": result.pulled,
        "catalogue_version": result.catalogue_version,
        "pending": result.pending,
        "refused": result.refused,
        "blobs": result.blobs,
        "purged": result.purged,
        "feed_problems": result.feed_problems,
    }
    emit(
        out,
        args.json,
        lambda d: (
            f"上传 {d['pushed']} 条变更，下载 {d['pulled']} 条，待传 {d['pending']}，"
            f"事项目录 v{d['catalogue_version']}"
            + blob_text(d["blobs"])
            + "".join(f"\n  被拒: {r}" for r in d["refused"])
            + "".join(f"\n  下行数据: {p}" for p in d["feed_problems"])
            + "".join(f"\n  照片: {e}" for e in d["blobs"].get("errors", []))
        ),
    )
    # A page refused or set aside is a refusal (exit 2) even though the rest of the round went on.
    return EXIT_REFUSED if (result.refused and result.pushed == 0) or result.feed_problems else 0


def cmd_export(args: argparse.Namespace) -> None:
    st = Station(args.dir)
    out = usb_files.export(st, args.out)
    emit(out, args.json, lambda d: f"已写出 {len(d['files'])} 个文件（{d['changes']} 条变更）到 {args.out}")


def cmd_import(args: argparse.Namespace) -> int:
    st = Station(args.dir)
    out = usb_files.import_files(st, args.paths)
    emit(
        out,
        args.json,
        lambda d: (
            f"已导入 {d['accepted']} 个文件"
            + (f"，跳过 {d['skipped']} 个本机导出或发往区局的文件" if d.get("skipped") else "")
            + "".join(f"\n  拒收 {r['file']}: {r['reason']}" for r in d["rejected"])
            + "".join(f"\n  较旧 {r['file']}: {r['reason']}" for r in d.get("older", []))
        ),
    )
    return EXIT_REFUSED if out["rejected"] else 0


def cmd_status(args: argparse.Namespace) -> None:
    st = Station(args.dir)
    emit(status.gather(st, hub_reachable=status.probe(st)), args.json, status.text)


def cmd_catalogue(args: argparse.Namespace) -> None:
    st = Station(args.dir)
    cat = st.catalogue()  # refuses with a reason when no release is held yet
    from present.pinyin import initials

    listing = catalogue_view.listing(cat.catalogue, cat.version, st.tier, args.search, initials)
    emit(listing, args.json, catalogue_view.listing_text)


def cmd_set_hub(args: argparse.Namespace) -> None:
    from node.set_hub import set_hub

    st = Station(args.dir)
    try:
        out = set_hub(st, args.url)
    finally:
        st.close()
    emit(
        out,
        args.json,
        lambda d: f"站点 {d['station']} 今后连接区局 {d['hub']}（已核验：根密钥指纹 {d['hub_fingerprint']}）",
    )


def cmd_receipts(args: argparse.Namespace) -> None:
    emit(status.batches(Station(args.dir)), args.json, status.batches_text)


def cmd_reconcile(args: argparse.Namespace) -> None:
    from node import reconcile

    st = Station(args.dir)
    out = reconcile.reconcile(st).to_dict()
    emit(
        out,
        args.json,
        lambda d: (
            f"对账：比较 {d['buckets_compared']} 个分桶，不一致记录 {d['divergent']}，"
            f"已修复 {d['repaired']}，传输 {d['bytes']} 字节"
            + ("" if d["summary_match"] is not False else "\n  区局的办件统计与本站不符，请联系区局核对")
        ),
    )


def cmd_backup(args: argparse.Namespace) -> None:
    from node.epoch import backup

    st = Station(args.dir)
    size = backup(st, args.out)
    emit({"file": str(args.out), "bytes": size}, args.json, lambda d: f"已备份到 {d['file']}（{d['bytes']} 字节）")


def cmd_restore(args: argparse.Namespace) -> None:
    from node.epoch import restore

    out = restore(args.dir, args.source)
    emit(out, args.json, lambda d: f"已恢复，进入第 {d['epoch']} 期编号；请联网同步并对账以补回备份之后的数据")


def cmd_inspect(args: argparse.Namespace) -> None:
    from node.assignment import assign

    st = Station(args.dir)
    staff_cli.author(st, args)  # signed in where the station has accounts: the task's copy is sealed
    out = assign(st, args.number, args.inspector, args.due)
    emit(
        out,
        args.json,
        lambda d: (
            f"已安排踏勘 {d['number']} → {d['inspector']}，任务 {d['task']}，期限 {d['due']}；"
            "办理时限暂停，下次同步时送达踏勘设备"
        ),
    )


def cmd_tasks(args: argparse.Namespace) -> None:
    from node import inspection

    st = Station(args.dir)
    if args.reveal:
        staff_cli.audit_reveal(st, args, "cli_reveal_tasks", "tasks")
    rows = inspection.tasks(st, reveal=args.reveal)
    emit({"tasks": rows}, args.json, inspection.tasks_text)


def cmd_report(args: argparse.Namespace) -> None:
    from node import inspection

    out = inspection.report(
        Station(args.dir),
        args.task,
        result=args.result,
        findings=args.finding,
        gps=args.gps,
        photos=args.photo,
        signature=args.signature,
        checks=args.check,
    )
    emit(out, args.json, inspection.report_text)


def cmd_purge(args: argparse.Namespace) -> None:
    from node import purge

    out = purge.purge(Station(args.dir), args.retention_days)
    emit(
        out,
        args.json,
        lambda d: (
            f"已清除 {len(d['purged'])} 份踏勘记录中的个人信息，删除照片 {d['blobs_deleted']} 个"
            f"（{d['bytes_freed']} 字节）"
        ),
    )


__all__ = ["Unreachable", "add_parser", "main"]
