"""`sanji hub reconcile`, `hub backup` and `hub restore`: the commands that keep the hub's data whole
(the nightly job on demand, a consistent copy while it serves, and putting a copy back)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from hub import blobindex
from hub.service import Hub
from present.output import emit
from replica.errors import Refused


def add_command(cmd: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = cmd("reconcile", "立即运行夜间任务：超期预警、统计、备份、整理数据库、对账报告")
    p.add_argument("--csv", type=Path, help="同时把各站统计写成 CSV 文件")
    p.add_argument("--no-backup", action="store_true", help="这次不做轮转备份")
    p.add_argument(
        "--partial-retention-days",
        type=int,
        default=blobindex.PARTIAL_RETENTION_DAYS,
        help="删除多少天没有新分块的照片上传（默认 7）",
    )
    p = cmd("backup", "区局服务运行时也可做一致的备份（数据库，照片在 备份文件.blobs/）")
    p.add_argument("--out", type=Path, required=True, help="备份文件路径")
    p = cmd("restore", "用备份替换区局数据（须先停止区局服务）")
    p.add_argument("--from", dest="source", type=Path, required=True, help="备份文件路径")


def _hub(args: argparse.Namespace) -> Hub:
    return Hub.open(args.dir)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from hub import nightly

    if args.partial_retention_days < 0:
        raise Refused("保留天数（--partial-retention-days）不能为负数：请给 0 或更大的天数 (must not be negative)")
    hub = _hub(args)
    out = nightly.run(
        hub, "on-demand", do_backup=not args.no_backup, partial_retention_days=args.partial_retention_days
    )
    if args.csv:
        args.csv.write_text(nightly.report_csv(out["report"]), encoding="utf-8")
    result = {k: out[k] for k in ("stations_checked", "divergent", "repaired", "overdue", "report")}
    emit(result, args.json, nightly.report_text)
    if out["outcome"] == "integrity_failed":
        print(
            f"sanji: 区局数据库完整性检查未通过：请停止区局服务（hub serve），用 sanji hub restore 从备份恢复"
            f" (integrity check failed: {out['report']['integrity']})",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from hub.backup import backup

    hub = _hub(args)
    out = backup(hub, args.out)
    emit(
        out,
        args.json,
        lambda d: (
            f"已备份到 {d['file']}（{d['bytes']} 字节），照片 {d['blobs']} 张到 {d['blobs_dir']}"
            + "".join(f"\n  照片文件已损坏，未备份: {sha}" for sha in d["blobs_damaged"])
        ),
    )
    if out["blobs_damaged"]:
        print(
            f"sanji: {hub.folder / 'blobs'} 中有 {len(out['blobs_damaged'])} 个照片文件已损坏（内容与文件名不符），"
            "未备份；各站下次同步或对账时会重新上传 (photo files do not match their names)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_restore(args: argparse.Namespace) -> None:
    from hub.restore import restore

    out = restore(args.dir, args.source)
    emit(
        out,
        args.json,
        lambda d: (
            f"已从 {d['from']} 恢复，照片 {d['blobs']} 张。"
            "各站下次同步与夜间对账会补回备份之后的数据。"
            + (f"\n注意：恢复后的数据库登记了 {d['blobs_missing']} 张区局没有的照片。" if d["blobs_missing"] else "")
        ),
    )
