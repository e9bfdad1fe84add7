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
    p = cmd("reconcile", "run the nightly job now: warnings, statistics, backup, compaction, anti-entropy report")
    p.add_argument("--csv", type=Path, help="also write the per-station statistics as CSV")
    p.add_argument("--no-backup", action="store_true", help="skip the rotated backup")
    p.add_argument(
        "--partial-retention-days",
        type=int,
        default=blobindex.PARTIAL_RETENTION_DAYS,
        help="remove photo uploads that received no chunk for this long (default 7)",
    )
    p = cmd("backup", "a consistent copy of the hub while it serves (the database, and its photos in FILE.blobs/)")
    p.add_argument("--out", type=Path, required=True)
    p = cmd("restore", "replace the hub's data with a backup (the hub must be stopped)")
    p.add_argument("--from", dest="source", type=Path, required=True)


def _hub(args: argparse.Namespace) -> Hub:
    return Hub.open(args.dir)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from hub import nightly

    if args.partial_retention_days < 0:
        raise Refused("--partial-retention-days must not be negative")
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
            f"sanji: the hub database failed its integrity check ({out['report']['integrity']}); "
            "stop the hub and restore from a backup",
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
            f"sanji: {len(out['blobs_damaged'])} photo file(s) in {hub.folder / 'blobs'} do not match their "
            "names and were not backed up",
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
