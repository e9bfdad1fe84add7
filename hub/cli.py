"""`sanji hub ...`: thin commands over the hub library. Each opens the folder, calls one function,
prints the result and exits with the code CONTRACT.md fixes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hub import blobindex, enrolment, inspection, keyring, operations, quarantine_review, slip, usb_files
from hub.service import Hub
from hub.staff_cli import add_commands as add_staff_commands
from hub.staff_cli import cmd_add_staff as cmd_add_staff  # dispatched by name
from hub.staff_cli import cmd_disable_staff as cmd_disable_staff
from hub.staff_cli import cmd_enable_staff as cmd_enable_staff
from hub.staff_cli import cmd_staff as cmd_staff
from hub.supplement import add_command as add_supplement
from hub.supplement import cmd_supplement as cmd_supplement  # dispatched by name
from hub.upkeep_cli import add_command as add_upkeep
from hub.upkeep_cli import cmd_backup as cmd_backup  # dispatched by name
from hub.upkeep_cli import cmd_reconcile as cmd_reconcile
from hub.upkeep_cli import cmd_restore as cmd_restore
from present.listing import EMPTY, application_line
from present.output import EXIT_REFUSED, STATUS_CHOICES, TIER_CHOICES, command_adder, dispatch, emit, emit_rows
from present.webui import TIER_NAMES, status_label
from protocol.limits import CATALOGUE_SOURCE_MAX_BYTES, RELEASE_FRAME_MAX_BYTES, mib
from replica.errors import Refused
from sync.inspection import PAUSED_LABEL


def add_parser(sub: Any) -> None:
    hub = sub.add_parser("hub", help="区局（区行政审批局）").add_subparsers(dest="cmd", required=True)

    cmd = command_adder(hub, "区局的文件夹（区局数据都在里面）")

    p = cmd("init", "建立区局：生成密钥，发布第 1 版事项目录")
    p.add_argument("--district", default="360802", help="行政区划代码（默认 360802）")
    p.add_argument("--name", default="吉州区", help="区名（默认 吉州区）")
    p.add_argument("--catalogue", type=Path, help="事项目录文件（JSON；不给则用内置的示例目录）")
    p.add_argument(
        "--database",
        metavar="postgresql://…",
        help="把区局数据放在这个 PostgreSQL（15 或更新）的空数据库里；密钥和设置仍在文件夹里（不给则用 SQLite）",
    )
    p = cmd("serve", "提供同步接口和区局管理页面")
    p.add_argument("--host", default="127.0.0.1", help="监听地址（默认 127.0.0.1，仅本机）")
    p.add_argument("--port", type=int, default=8700, help="端口（默认 8700）")
    p.add_argument("--nightly", default="02:00", help="夜间任务的时间 HH:MM（默认 02:00）")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="在同一端口上运行几个区局进程（默认 1；多核机器上可取核数，验签、解密、下发和页面并行）",
    )
    p.add_argument(
        "--allow-unsealed-for-tests",
        action="store_true",
        help="接受未加密给区局的批次（仅供测试，切勿用于生产）",
    )
    p.add_argument(
        "--partial-retention-days",
        type=int,
        default=blobindex.PARTIAL_RETENTION_DAYS,
        help="夜间任务删除多少天没有新分块的照片上传（默认 7）",
    )
    p = cmd("enroll", "登记一个站点，发放一次性接入令牌")
    p.add_argument("--station", required=True, help="站点编码")
    p.add_argument("--name", required=True, help="站点名称")
    p.add_argument("--tier", required=True, choices=sorted(enrolment.STATION_TIERS), help="层级：" + TIER_CHOICES)
    p.add_argument("--parent", default="", help="上级站点编码（村、社区填所属乡镇、街道）")
    p.add_argument("--out", type=Path, help="同时写出登记文件，带给没有网络的站点")
    p.add_argument("--hub-url", default="", help="写入登记文件的区局地址")
    p = cmd("rotate-key", "换用新的在线签名密钥（由根密钥列出），各站下次同步时自动跟随")
    p.add_argument("--root", type=Path, help="根密钥文件（根密钥不放在区局电脑上时；默认 区局文件夹/keys/root）")
    p.add_argument("--valid-days", type=int, default=365, help="新密钥清单的有效天数（默认 365）")
    p.add_argument(
        "--seal", action="store_true", help="同时换用新的加密密钥（旧密钥留在区局文件夹，用于解开此前加密的数据）"
    )
    p = cmd("prune-seal-keys", "删除不再需要的已退役加密密钥（有暂存加密给它、或有站点自它退役后未同步时拒绝）")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--before", metavar="YYYY-MM-DD", help="删除在这一天之前退役的加密密钥")
    which.add_argument("--key-id", help="删除这一个已退役的加密密钥（密钥编号）")
    p.add_argument("--dry-run", action="store_true", help="只列出会删除和保留哪些，不删除")
    p.add_argument(
        "--even-if-stations-behind",
        action="store_true",
        help="即使有站点自密钥退役后未同步（或退役日期未记录）也删除：这些站点手里仍加密给该密钥的数据到达后无法核对放行，只能驳回",
    )
    p = cmd("rotate-root", "换用新的根密钥（由旧根密钥指定），各站下次同步时自动跟随")
    p.add_argument("--new-root", type=Path, required=True, help="新的根密钥文件（不存在则生成）")
    p.add_argument("--root", type=Path, help="当前的根密钥文件（默认 区局文件夹/keys/root）")
    p.add_argument("--valid-days", type=int, default=365, help="新密钥清单的有效天数（默认 365）")
    p = cmd("add-operator", "建立管理页面的登录账号；密码从标准输入读取")
    p.add_argument("--user", required=True, help="用户名")
    p = cmd("revoke", "吊销一个站点的密钥（设备丢失时）")
    p.add_argument("--station", required=True, help="站点编码")
    p = cmd("publish", "把事项目录文件发布为下一版")
    p.add_argument("file", type=Path, help="事项目录文件（JSON）")
    p = cmd("import", "导入站点用U盘带来的文件")
    p.add_argument("paths", type=Path, nargs="+", help="文件或文件夹（如U盘）")
    p = cmd("export", "把发给某站点的数据写成文件，用U盘带去")
    p.add_argument("--station", required=True, help="站点编码")
    p.add_argument("--out", type=Path, required=True, help="写到哪个文件夹（如U盘）")
    p = cmd("applications", "列出办件")
    p.add_argument("--station", help="只列出这个站点的办件")
    p.add_argument("--status", help="只列出这个状态的办件：" + STATUS_CHOICES)
    p.add_argument("--reveal", action="store_true", help="显示完整身份证号和手机号")
    p = cmd("transition", "区局办理一步：变更办件状态")
    p.add_argument("number", help="办件编号")
    p.add_argument("--to", required=True, help="变更为：" + STATUS_CHOICES)
    p.add_argument("--note", default="", help="说明（记入办件记录）")
    p.add_argument(
        "--override-reason", default="", help="需现场踏勘的事项在没有踏勘报告时准予许可的理由（记入审计记录）"
    )
    add_supplement(cmd)  # 补交材料 (hub/supplement.py)
    cmd("status", "同步全貌：各站最近同步、待传、拒收与警报，区局密钥")
    p = cmd("conflicts", "未解决的冲突")
    p.add_argument("--all", action="store_true", help="包括已解决的")
    p = cmd("quarantine", "暂存待核的变更，各附理由和固定代码")
    p.add_argument("--station", help="只看这个站点发来的（它自己的变更和它转发的）")
    p.add_argument("--all", action="store_true", help="包括已放行和已驳回的")
    add_upkeep(cmd)  # reconcile, backup, restore (hub/upkeep_cli.py)
    p = cmd("inspect", "把办件的现场踏勘派给踏勘设备")
    p.add_argument("number", help="办件编号")
    p.add_argument("--inspector", required=True, help="踏勘设备的站点编码")
    p.add_argument("--due", help="踏勘期限 YYYY-MM-DD（默认今天起 5 个工作日）")
    p = cmd("inspections", "各办件的现场踏勘任务，最新的在前")
    p.add_argument("--missing", action="store_true", help="只列出区局还缺照片或签名的报告")
    p.add_argument("--open", action="store_true", help="只列出还在等报告的任务")
    p = cmd("catalogue", "某一级可受理的事项：材料（必交、可容缺后补）、承诺时限、是否需现场踏勘")
    p.add_argument(
        "--tier",
        default="district",
        choices=["district", "township", "street", "village", "community"],
        help="哪一级（默认 district：区局窗口）",
    )
    p = cmd("show", "一件办件的全部内容")
    p.add_argument("number", help="办件编号")
    p.add_argument("--reveal", action="store_true", help="显示完整身份证号和手机号")
    add_staff_commands(cmd)  # 站点工作人员账户 (hub/staff.py)


def _hub(args: argparse.Namespace) -> Hub:
    return Hub.open(args.dir)


def main(args: argparse.Namespace) -> int | None:
    return dispatch(globals(), args)


def cmd_init(args: argparse.Namespace) -> None:
    doc = None
    if args.catalogue:
        try:
            doc = json.loads(args.catalogue.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise Refused(f"无法读取事项目录文件 {args.catalogue}：请检查路径和 JSON 格式后重试 ({exc})") from exc
    hub = Hub.create(args.dir, district=args.district, name=args.name, catalogue=doc, database=args.database)
    version, _ = hub.catalogue()
    emit(
        {"hub_id": hub.hub_id, "catalogue_version": version},
        args.json,
        lambda d: f"已创建区级枢纽 {args.name} ({d['hub_id']}) 于 {args.dir}，事项目录版本 {d['catalogue_version']}",
    )
    hub.close()


def cmd_serve(args: argparse.Namespace) -> None:
    from hub.server import serve

    if args.partial_retention_days < 0:
        raise Refused("保留天数（--partial-retention-days）不能为负数：请给 0 或更大的天数 (must not be negative)")
    serve(
        args.dir,
        host=args.host,
        port=args.port,
        nightly=args.nightly,
        partial_retention_days=args.partial_retention_days,
        allow_unsealed=args.allow_unsealed_for_tests,
        workers=args.workers,
    )


def cmd_enroll(args: argparse.Namespace) -> None:
    hub = _hub(args)
    token = enrolment.register(hub, station=args.station, name=args.name, tier=args.tier, parent=args.parent)
    fp = enrolment.fingerprint_of(hub)
    out: dict[str, object] = {"station": args.station, "token": token, "fingerprint": fp}
    if args.out:
        args.out.write_bytes(enrolment.enrolment_file(hub, args.station, token, args.hub_url))
        out["file"] = str(args.out)
        # The slip's QR code (the token, which carries the fingerprint) beside the file, to print.
        qr = args.out.with_name(args.out.name + ".qr.svg")
        slip.token_qr(token).save(str(qr), scale=6, title=f"Sanji {args.station}")
        out["qr"] = str(qr)
    emit(
        out,
        args.json,
        lambda d: (
            f"已登记 {args.name} ({args.station}, {TIER_NAMES[args.tier]})\n"
            f"一次性令牌: {token}\n区局根密钥指纹: {fp}（站点接入时核对）\n"
            + slip.terminal_qr(token)
            + (f"\n登记文件: {args.out}（须与令牌一起使用）\n登记单二维码: {out['qr']}" if args.out else "")
        ),
    )


def cmd_prune_seal_keys(args: argparse.Namespace) -> None:
    from hub import seal_prune

    out = seal_prune.prune(
        _hub(args),
        before=args.before,
        key_id=args.key_id,
        dry_run=args.dry_run,
        even_if_behind=args.even_if_stations_behind,
    )
    emit(out, args.json, seal_prune.text)


def cmd_rotate_key(args: argparse.Namespace) -> None:
    out = keyring.rotate_key(_hub(args), root_path=args.root, valid_days=args.valid_days, seal=args.seal)
    emit(
        out,
        args.json,
        lambda d: (
            f"已启用新的在线签名密钥 {d['key_id']}（密钥清单版本 {d['version']}）。"
            + (
                f"新的加密密钥 {d['seal_key_id']}；旧加密密钥保留在区局文件夹，用于解开此前加密的数据。"
                if args.seal
                else ""
            )
            + "运行中的 hub serve 会自动改用新密钥；各站下次同步（或导入 hub export 的文件）时自动跟随，无需重新接入"
        ),
    )


def cmd_rotate_root(args: argparse.Namespace) -> None:
    out = keyring.rotate_root(_hub(args), args.new_root, root_path=args.root, valid_days=args.valid_days)
    emit(
        out,
        args.json,
        lambda d: (
            f"已更换根密钥 {d['key_id']}，新指纹 {d['fingerprint']}"
            f"（密钥清单版本 {d['version']}）。新根密钥文件: {args.new_root}，请离线妥善保管；各站下次同步时自动跟随"
        ),
    )


def cmd_add_operator(args: argparse.Namespace) -> None:
    hub = _hub(args)
    from hub.passwords import MIN_LENGTH, hash_password

    password = sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_LENGTH:
        raise Refused(f"密码至少要 {MIN_LENGTH} 个字符：请换一个更长的密码后重试 (the password is too short)")

    with hub.store.transaction():
        hub.store.add_operator(args.user, hash_password(password), hub.clock())
    emit({"user": args.user}, args.json, lambda d: f"已创建运维账号 {d['user']}")


def cmd_revoke(args: argparse.Namespace) -> None:
    hub = _hub(args)
    with hub.store.transaction():
        if not hub.store.revoke(args.station):
            raise Refused(
                f"区局没有登记站点 {args.station}：请核对站点编码（sanji hub status 列出所有站点） (no such station)"
            )
        hub.store.alert("revoked", args.station, "运维人员用命令行吊销 (revoked by an operator)", hub.clock())
    emit({"station": args.station, "revoked": True}, args.json, lambda d: f"已吊销 {d['station']} 的密钥")


def cmd_publish(args: argparse.Namespace) -> None:
    hub = _hub(args)
    try:
        size = args.file.stat().st_size
    except OSError as exc:
        raise Refused(f"无法读取事项目录文件 {args.file}：请检查路径后重试 ({exc})") from exc
    if size > CATALOGUE_SOURCE_MAX_BYTES:  # refused before it is read: parsing it could cost gigabytes
        raise Refused(
            f"事项目录文件 {args.file} 有 {mib(size)}，超过可发布的上限 {mib(CATALOGUE_SOURCE_MAX_BYTES)}，"
            f"未读取 (catalogue file is {size} bytes, over the {CATALOGUE_SOURCE_MAX_BYTES}-byte cap)；"
            f"站点能接收的签名目录最大为 {mib(RELEASE_FRAME_MAX_BYTES)}，请精简目录后重试",
            code="too_large",
        )
    try:
        doc = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Refused(f"无法读取事项目录文件 {args.file}：请检查它是否为 UTF-8 编码的 JSON 后重试 ({exc})") from exc
    version = hub.publish(doc)
    emit({"catalogue_version": version}, args.json, lambda d: f"已发布事项目录版本 {d['catalogue_version']}")


def cmd_import(args: argparse.Namespace) -> int:
    out = usb_files.import_files(_hub(args), args.paths)
    rejected = out["rejected"]
    assert isinstance(rejected, list)
    emit(
        out,
        args.json,
        lambda d: (
            f"导入批次 {d['accepted']}，重复 {d['duplicates']}，照片 {d['blobs']}，拒收 {len(rejected)}"
            + (f"，跳过 {d['skipped']} 个本机导出的文件" if d["skipped"] else "")
            + "".join(f"\n  站点 {c} 已确认接入（离线登记）" for c in d.get("claimed", []))
            + "".join(f"\n  拒收 {r['file']}: {r['reason']}" for r in rejected)
        ),
    )
    return EXIT_REFUSED if rejected else 0


def cmd_export(args: argparse.Namespace) -> None:
    files = usb_files.export_files(_hub(args), args.station, args.out)
    emit({"files": files}, args.json, lambda d: "已写出:\n" + "\n".join(f"  {f}" for f in files))


def cmd_applications(args: argparse.Namespace) -> None:
    hub = _hub(args)
    # Streamed: a hub of ten years holds a million applications (issue 20).
    apps = hub.store.iter_applications(station=args.station, status=args.status, reveal=args.reveal)
    emit_rows("applications", apps, args.json, application_line, EMPTY)


def cmd_transition(args: argparse.Namespace) -> None:
    hub = _hub(args)
    out = operations.transition(
        hub, args.number, args.to, args.note, override_reason=args.override_reason, actor="区局（命令行）"
    )
    emit(
        out,
        args.json,
        lambda d: (
            f"{d['number']} → {status_label(d['status'])}"
            + (
                f"\n  未经现场踏勘准予许可，理由已记入办件记录：{d['override_reason']}"
                if d.get("override_reason")
                else ""
            )
        ),
    )


def cmd_status(args: argparse.Namespace) -> None:
    hub = _hub(args)
    emit(operations.status(hub), args.json, operations.status_text)


def cmd_conflicts(args: argparse.Namespace) -> None:
    hub = _hub(args)
    rows = operations.conflicts(hub, include_resolved=args.all)
    emit({"conflicts": rows}, args.json, operations.conflicts_text)


def cmd_quarantine(args: argparse.Namespace) -> None:
    hub = _hub(args)
    rows = [
        {k: v for k, v in r.items() if k != "gloss"}
        for r in quarantine_review.quarantine_rows(hub, origin=args.station, include_closed=args.all)
    ]

    emit({"quarantined": rows}, args.json, quarantine_review.listing_text)


def cmd_catalogue(args: argparse.Namespace) -> None:
    from sync import catalogue_view

    hub = _hub(args)
    version, cat = hub.catalogue()
    emit(catalogue_view.listing(cat, version, args.tier), args.json, catalogue_view.listing_text)


def cmd_show(args: argparse.Namespace) -> None:
    hub = _hub(args)
    from hub.show_text import render

    emit(operations.show(hub, args.number, reveal=args.reveal), args.json, render)


def cmd_inspect(args: argparse.Namespace) -> None:
    from hub.inspection import assign

    out = assign(_hub(args), args.number, args.inspector, args.due)
    emit(
        out,
        args.json,
        lambda d: (
            f"已安排踏勘 {d['number']} → {d['inspector']}，任务 {d['task']}，须于 {d['due']} 前完成；办件{PAUSED_LABEL}"
        ),
    )


def cmd_inspections(args: argparse.Namespace) -> None:
    rows = inspection.list_inspections(_hub(args), missing_only=args.missing, open_only=args.open, limit=None)
    emit({"inspections": rows}, args.json, inspection.inspections_text)
