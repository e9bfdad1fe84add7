"""`sanji node ...`: thin commands over the station library (see CONTRACT.md for the outside shape)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from node import commands, enrolment, relay_cargo, relay_client, staff_cli, status, sync_lock, usb_files
from node.cli_args import add_parser as add_parser  # sanji/cli.py builds the parser through here
from node.staff_cli import cmd_add_admin as cmd_add_admin  # dispatched by name
from node.staff_cli import cmd_passwd as cmd_passwd  # dispatched by name
from node.station import Station
from node.supplement import cmd_supplement as cmd_supplement  # dispatched by name
from node.sync_text import blob_text, export_text, import_notes, print_progress, pulled_text, relay_text
from present.listing import EMPTY, application_line
from present.output import EXIT_REFUSED, dispatch, emit, emit_rows
from present.webui import TIER_NAMES, status_label
from replica.errors import Refused, Unreachable
from replica.listing import iter_applications
from sync import catalogue_view


def main(args: argparse.Namespace) -> int | None:
    return dispatch(globals(), args)


def cmd_init(args: argparse.Namespace) -> None:
    admin = staff_cli.admin_request(args)  # checked before the station is made
    relay_client.check_url(args.relay)  # '' (no relay) passes
    if args.enrollment:
        out = enrolment.init_from_file(args.dir, args.enrollment, args.hub, args.token)
    elif args.hub and args.token:
        out = enrolment.init_online(args.dir, args.hub, args.token)
    else:
        raise Refused(
            "请给出 --hub 区局地址 --token 令牌；没有网络的站点给出 --enrollment 登记文件 --token 令牌"
            " (give --hub URL --token TOKEN, or --enrollment FILE --token TOKEN)"
        )
    if args.relay:
        out["relay"] = relay_client.set_relay(args.dir, args.relay)
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
            + (f"\n乡镇转发站 {d['relay']}（连不上区局时经它转发）" if d.get("relay") else "")
            + (OFFLINE_CLAIM if args.enrollment else "")
        ),
    )


# Offline, the hub learns the station's keys only from the claim on its first stick, which a township
# does not carry: until then the hub refuses its batches however they come.
OFFLINE_CLAIM = (
    "\n离线登记：区局收到本站的接入确认文件后才收本站的批次，请把 sanji node export 的U盘带到区局 sanji hub import"
    "（乡镇不转交这个文件）"
)


def cmd_serve(args: argparse.Namespace) -> None:
    from node.server import serve

    relay = (args.relay_host, args.relay_port) if args.relay_port is not None else None
    serve(
        args.dir, port=args.port, interval=args.interval, nightly_at=args.nightly, relay=relay, relay_url=args.relay_url
    )


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
        **{"via": result.via, "relayed_batches": result.relayed_batches},  # "relay": through the township
        "forwarded": result.forwarded,
        "staff": result.staff,
    }
    emit(
        out,
        args.json,
        lambda d: (
            f"上传 {d['pushed']} 条变更，{pulled_text(d)}，待传 {d['pending']}，"
            f"事项目录 v{d['catalogue_version']}"
            + blob_text(d["blobs"])
            + relay_text(d)
            + "".join(f"\n  被拒: {r}" for r in d["refused"])
            + "".join(f"\n  转发: {n}" for n in d["forwarded"])
            + "".join(f"\n  下行数据: {p}" for p in d["feed_problems"])
            + "".join(f"\n  照片: {e}" for e in d["blobs"].get("errors", []))
        ),
    )
    # A page refused or set aside is a refusal (exit 2) even though the rest of the round went on.
    return EXIT_REFUSED if (result.refused and result.pushed == 0) or result.feed_problems else 0


def cmd_export(args: argparse.Namespace) -> None:
    st = Station(args.dir)
    out = relay_cargo.export_for(st, args.village, args.out) if args.village else usb_files.export(st, args.out)
    emit(out, args.json, lambda d: export_text(d, args.out))


def cmd_import(args: argparse.Namespace) -> int:
    st = Station(args.dir)
    out = usb_files.import_files(st, args.paths)
    emit(
        out,
        args.json,
        lambda d: (
            f"已导入 {d['accepted']} 个文件"
            + (f"，跳过 {d['skipped']} 个本机导出或发往区局的文件" if d.get("skipped") else "")
            + import_notes(d)
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


def cmd_relay_reset(args: argparse.Namespace) -> None:
    from node import relay_alert

    st = Station(args.dir)
    lifted = relay_alert.lift(st)
    cleared = None
    if lifted is not None:
        cleared = {k: lifted[k] for k in ("relay", "url", "problem", "detail") if k in lifted}
        # Not dropped: one the hub has not heard of yet still goes with the next round (relay_alert.lift).
        cleared["reported"] = bool(lifted.get("reported_ms"))
    emit(
        {"station": st.code, "cleared": cleared},
        args.json,
        lambda d: (
            "本站没有对乡镇中转站的暂停，无须解除"
            if d["cleared"] is None
            else f"已解除对乡镇中转站 {d['cleared']['relay']}（{d['cleared']['url']}）的暂停"
            f"（{d['cleared']['problem']}），下次同步起恢复经它转发；"
            + ("该异常已报告区局" if d["cleared"]["reported"] else "该异常未删除，仍将在下次连上区局时报告，由区局核查")
        ),
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
    out = assign(st, args.number, args.inspector, args.due, author=staff_cli.author(st, args))
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

    st = Station(args.dir)
    out = inspection.report(
        st,
        args.task,
        result=args.result,
        findings=args.finding,
        gps=args.gps,
        photos=args.photo,
        signature=args.signature,
        checks=args.check,
        author=staff_cli.author(st, args),
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
