"""`sanji hub ...`: thin commands over the hub library. Each opens the folder, calls one function,
prints the result and exits with the code CONTRACT.md fixes."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from hub import blobindex, enrollment, inspections, keyring, operations, slip
from hub.feed import feed_page
from hub.ingest import ingest_frame
from hub.service import Hub
from hub.supplement import add_command as add_supplement
from hub.supplement import cmd_supplement as cmd_supplement  # dispatched by name
from protocol.document import sign_document
from protocol.errors import RemoteProtocolError
from protocol.limits import CATALOGUE_SOURCE_MAX_BYTES, RELEASE_FRAME_MAX_BYTES, mib
from replica import carried_files
from replica.errors import Refused
from replica.output import EXIT_REFUSED, command_adder, dispatch, emit
from sync.inspection import PAUSED_LABEL
from sync.session import AckResult
from sync.workflow import STATUS_LABELS, Status

TIER_NAMES = {"township": "镇", "street": "街道", "village": "村", "community": "社区", "field": "踏勘设备"}


def add_parser(sub: Any) -> None:
    hub = sub.add_parser("hub", help="the district hub").add_subparsers(dest="cmd", required=True)

    cmd = command_adder(hub, "the hub's folder")

    p = cmd("init", "create a hub, its keys and catalogue release 1")
    p.add_argument("--district", default="360802")
    p.add_argument("--name", default="吉州区")
    p.add_argument("--catalogue", type=Path)
    p = cmd("serve", "serve the sync API and dashboard")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--nightly", default="02:00", help="time of the nightly job, HH:MM")
    p.add_argument(
        "--allow-unsealed-for-tests",
        action="store_true",
        help="accept batches not sealed to the hub's key (test harnesses only; never in production)",
    )
    p.add_argument(
        "--partial-retention-days",
        type=int,
        default=blobindex.PARTIAL_RETENTION_DAYS,
        help="the nightly job removes photo uploads that received no chunk for this long (default 7)",
    )
    p = cmd("enroll", "register a station and issue a one-time token")
    p.add_argument("--station", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--tier", required=True, choices=sorted(enrollment.STATION_TIERS))
    p.add_argument("--parent", default="")
    p.add_argument("--out", type=Path, help="also write an enrolment file to carry to an offline station")
    p.add_argument("--hub-url", default="", help="hub address to put in the enrolment file")
    p = cmd("rotate-key", "a new online signing key, listed by the root; stations follow at their next sync")
    p.add_argument("--root", type=Path, help="the root key file, if it is kept off the hub (default HUB/keys/root)")
    p.add_argument("--valid-days", type=int, default=365, help="how long the new key list is valid (default 365)")
    p = cmd("rotate-root", "a new root key, named by the old one; stations follow at their next sync")
    p.add_argument("--new-root", type=Path, required=True, help="the new root key file (made if it does not exist)")
    p.add_argument("--root", type=Path, help="the current root key file (default HUB/keys/root)")
    p.add_argument("--valid-days", type=int, default=365, help="how long the new key list is valid (default 365)")
    p = cmd("add-operator", "create a dashboard login; the password is read from stdin")
    p.add_argument("--user", required=True)
    p = cmd("revoke", "revoke a station's key")
    p.add_argument("--station", required=True)
    p = cmd("publish", "publish a catalogue file as the next release")
    p.add_argument("file", type=Path)
    p = cmd("import", "ingest batch files or folders carried by hand")
    p.add_argument("paths", type=Path, nargs="+")
    p = cmd("export", "write a station's downstream feed as files")
    p.add_argument("--station", required=True)
    p.add_argument("--out", type=Path, required=True)
    p = cmd("applications", "list applications")
    p.add_argument("--station")
    p.add_argument("--status")
    p.add_argument("--reveal", action="store_true", help="show full ID numbers and phones")
    p = cmd("transition", "a hub-side workflow step")
    p.add_argument("number")
    p.add_argument("--to", required=True)
    p.add_argument("--note", default="")
    p.add_argument(
        "--override-reason", default="", help="需现场踏勘的事项在没有踏勘报告时准予许可的理由（记入审计记录）"
    )
    add_supplement(cmd)  # 补交材料 (hub/supplement.py)
    cmd("status", "the sync picture")
    p = cmd("conflicts", "open conflicts")
    p.add_argument("--all", action="store_true", help="include resolved ones")
    p = cmd("quarantine", "changes held for review, each with its reason (Chinese) and stable code")
    p.add_argument("--station", help="only what this station sent (its own changes and any it re-sent)")
    p.add_argument("--all", action="store_true", help="include released and rejected ones")
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
    p = cmd("inspect", "assign an on-site inspection of an application to a field device")
    p.add_argument("number")
    p.add_argument("--inspector", required=True, help="the field device's station code")
    p.add_argument("--due", help="YYYY-MM-DD; default 5 working days from today")
    p = cmd("inspections", "on-site inspection tasks across applications, newest first")
    p.add_argument("--missing", action="store_true", help="only reports whose photos or signature the hub lacks")
    p.add_argument("--open", action="store_true", help="only tasks still awaiting their report")
    p = cmd("catalogue", "某一级可受理的事项：材料（必交、可容缺后补）、承诺时限、是否需现场踏勘")
    p.add_argument(
        "--tier",
        default="district",
        choices=["district", "township", "street", "village", "community"],
        help="哪一级（默认 district：区局窗口）",
    )
    p = cmd("show", "one application in full")
    p.add_argument("number")
    p.add_argument("--reveal", action="store_true")


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
            raise Refused(f"cannot read catalogue {args.catalogue}: {exc}") from exc
    hub = Hub.create(args.dir, district=args.district, name=args.name, catalogue=doc)
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
        raise Refused("--partial-retention-days must not be negative")
    serve(
        args.dir,
        host=args.host,
        port=args.port,
        nightly=args.nightly,
        partial_retention_days=args.partial_retention_days,
        allow_unsealed=args.allow_unsealed_for_tests,
    )


def cmd_enroll(args: argparse.Namespace) -> None:
    hub = _hub(args)
    token = enrollment.register(hub, station=args.station, name=args.name, tier=args.tier, parent=args.parent)
    fp = enrollment.fingerprint_of(hub)
    out: dict[str, object] = {"station": args.station, "token": token, "fingerprint": fp}
    if args.out:
        args.out.write_bytes(enrollment.enrolment_file(hub, args.station, token, args.hub_url))
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


def cmd_rotate_key(args: argparse.Namespace) -> None:
    out = keyring.rotate_key(_hub(args), root_path=args.root, valid_days=args.valid_days)
    emit(
        out,
        args.json,
        lambda d: (
            f"已启用新的在线签名密钥 {d['key_id']}（密钥清单版本 {d['version']}）。"
            "运行中的 hub serve 会自动改用新密钥；各站下次同步（或导入 hub export 的文件）时自动跟随，无需重新接入"
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
        raise Refused(f"the password must have at least {MIN_LENGTH} characters")

    with hub.store.transaction():
        hub.store.add_operator(args.user, hash_password(password), hub.clock())
    emit({"user": args.user}, args.json, lambda d: f"已创建运维账号 {d['user']}")


def cmd_revoke(args: argparse.Namespace) -> None:
    hub = _hub(args)
    with hub.store.transaction():
        if not hub.store.revoke(args.station):
            raise Refused(f"no station {args.station} is registered")
        hub.store.alert("revoked", args.station, "revoked by an operator", hub.clock())
    emit({"station": args.station, "revoked": True}, args.json, lambda d: f"已吊销 {d['station']} 的密钥")


def cmd_publish(args: argparse.Namespace) -> None:
    hub = _hub(args)
    try:
        size = args.file.stat().st_size
    except OSError as exc:
        raise Refused(f"cannot read catalogue {args.file}: {exc}") from exc
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
        raise Refused(f"cannot read catalogue {args.file}: {exc}") from exc
    version = hub.publish(doc)
    emit({"catalogue_version": version}, args.json, lambda d: f"已发布事项目录版本 {d['catalogue_version']}")


def _files(paths: list[Path]) -> tuple[list[Path], list[carried_files.Refusal]]:
    try:
        found, refused = carried_files.collect(paths)
    except FileNotFoundError as exc:
        raise Refused(f"{exc.filename} 不存在 (does not exist)；请检查路径，U盘是否已插好") from exc
    # Claims first: a never-online station's keys must be pinned before its batches are checked.
    return sorted(found, key=lambda x: (x.suffix != ".sjc", str(x))), refused


def cmd_import(args: argparse.Namespace) -> int:
    hub = _hub(args)
    accepted = duplicates = skipped = 0
    rejected: list[dict[str, str]] = []
    blob_files: list[Path] = []
    found, refused = _files(args.paths)
    for path in found:
        try:
            data = carried_files.read(path)
        except carried_files.CarriedFileRefused as exc:
            refused.append(exc.refusal)
            continue
        if carried_files.going_the_other_way(data, hub_id=hub.hub_id, at_hub=True):
            skipped += 1  # the hub's own exports on a stick used both ways: not a rejection
            continue
        if blobindex.is_blob_file(data):
            blob_files.append(path)  # after the batches: a blob needs its report at the hub first
            continue
        if data.startswith(b"SJC1"):
            try:
                enrollment.accept_claim(hub, data)
            except RemoteProtocolError as exc:
                rejected.append({"file": str(path), "reason": f"{exc.code}: {exc}"})
                with hub.store.transaction():
                    hub.store.reject(f"file:{path.name}", "", f"{exc.code}: {exc}", hub.clock())
            continue
        ack = ingest_frame(hub, data, source=f"file:{path.name}")
        if ack.result in (AckResult.APPLIED, AckResult.QUARANTINED):
            accepted += 1
        elif ack.result is AckResult.DUPLICATE:
            duplicates += 1
        else:
            rejected.append({"file": str(path), "reason": f"{ack.result.value}: {ack.reason}"})
    blobs, blob_dups, blob_rejected = blobindex.import_files(hub, blob_files)
    rejected += blob_rejected
    if refused:
        with hub.store.transaction():
            for r in refused:
                hub.store.reject(f"file:{r.path.name}", "", f"{r.code}: {r.reason}", hub.clock())
    rejected += [r.row() for r in refused]
    out = {
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "blobs": blobs,
        "blob_duplicates": blob_dups,
        "skipped": skipped,
    }
    emit(
        out,
        args.json,
        lambda d: (
            f"导入批次 {accepted}，重复 {duplicates}，照片 {blobs}，拒收 {len(rejected)}"
            + (f"，跳过 {skipped} 个本机导出的文件" if skipped else "")
            + "".join(f"\n  拒收 {r['file']}: {r['reason']}" for r in rejected)
        ),
    )
    return EXIT_REFUSED if rejected else 0


def cmd_export(args: argparse.Namespace) -> None:
    hub = _hub(args)
    station = hub.store.station(args.station)
    if station is None:
        raise Refused(f"no station {args.station} is registered")
    args.out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    after, version = station.feed_ack, station.catalogue_version
    latest = hub.store.latest_release()
    while True:
        page = feed_page(hub, args.station, after=after, catalogue_version=version)
        body_next, more = _page_next(page)
        name = args.out / f"{args.station}_feed_{after:010d}-{body_next:010d}.sjd"
        name.write_bytes(page)
        files.append(str(name))
        # A new release rides on the first page only. A page with the release and no changes (they did
        # not fit beside it) has next == after and more: the changes follow on the next page.
        carried, version = version, max(version, latest[0] if latest is not None else 0)
        if body_next == after and not (more and carried != version):
            break
        after = body_next
    receipts = hub.store.conn.execute(
        "SELECT hash, result, receipt FROM batches WHERE origin=? ORDER BY received_ms DESC LIMIT 5000",
        (args.station,),
    ).fetchall()
    if receipts:
        acks = [
            {"batch": bytes(h), "result": r, "expected": 0, "reason": "", "receipt": bytes(rc)} for h, r, rc in receipts
        ]
        doc = sign_document(
            "acks", {"acks": acks}, signer=hub.hub_id, recipient=args.station, signing_key=hub.keys.sign
        )
        name = args.out / f"{args.station}_receipts_{hashlib.sha256(doc).hexdigest()[:12]}.sjd"
        name.write_bytes(doc)
        files.append(str(name))
    keys = keyring.bundle(hub)  # first on the stick: the pages after it may be signed by a key only it names
    name = args.out / f"{args.station}_keys_v{int(str(keys['version'])):04d}.sjk"
    name.write_bytes(keyring.key_file(keys))
    files.insert(0, str(name))
    held = blobindex.held_document(hub, args.station)  # lets a USB-only field device purge its photos
    if held is not None:
        name = args.out / f"{args.station}_blobs_held_{hashlib.sha256(held).hexdigest()[:12]}.sjd"
        name.write_bytes(held)
        files.append(str(name))
    emit({"files": files}, args.json, lambda d: "已写出:\n" + "\n".join(f"  {f}" for f in files))


def _page_next(page: bytes) -> tuple[int, bool]:
    """The `next` cursor and `more` of a page we just made; feed pages carry them in their signed header."""
    from protocol.frame import peek_header

    header = peek_header(page)
    value = header.get("next")
    return (int(value) if isinstance(value, int) else 0), header.get("more") is True


def cmd_applications(args: argparse.Namespace) -> None:
    hub = _hub(args)
    apps = operations.applications(hub, station=args.station, status=args.status, reveal=args.reveal)
    emit({"applications": apps}, args.json, _apps_text)


def _apps_text(d: dict[str, Any]) -> str:
    lines = [
        f"{a['number']}  {a['status']:<20} {a['item']}  {a['applicant_name']}  受理 {a['accepted_at']}  "
        + (PAUSED_LABEL if a.get("paused") else f"时限 {a['due_date']}")
        for a in d["applications"]
    ]
    return "\n".join(lines) or "（无办件）"


def cmd_transition(args: argparse.Namespace) -> None:
    hub = _hub(args)
    out = operations.transition(
        hub, args.number, args.to, args.note, override_reason=args.override_reason, actor="区局（命令行）"
    )
    emit(
        out,
        args.json,
        lambda d: (
            f"{d['number']} → {d['status']}"
            + (
                f"\n  未经现场踏勘准予许可，理由已记入办件记录：{d['override_reason']}"
                if d.get("override_reason")
                else ""
            )
        ),
    )


def cmd_status(args: argparse.Namespace) -> None:
    hub = _hub(args)
    emit(operations.status(hub), args.json, _status_text)


def _status_text(d: dict[str, Any]) -> str:
    keys = d.get("hub_keys") or {}
    lines = [
        f"{d['name']} ({d['hub_id']}) 事项目录 v{d['catalogue_version']}",
        f"根密钥指纹 {keys.get('fingerprint')}  密钥清单 v{keys.get('version')} 有效至 {keys.get('expires_at')}"
        + (f"\n提醒: {keys['warning']}" if keys.get("warning") else ""),
        f"办件 {d['applications']}  冲突 {d['conflicts']}  隔离 {d['quarantined']}  拒收 {d['rejected_batches']}"
        f"  缺照片 {d.get('missing_blobs', 0)}",
    ]
    for s in d["stations"]:
        flag = " 已吊销" if s["revoked"] else ("" if s["enrolled"] else " 未接入")
        lines.append(
            f"  {s['code']:<16} {TIER_NAMES.get(s['tier'], s['tier']):<4} 最近 {s['last_seen'] or '从未'}"
            f"  办件 {s['applications']}  待传 {s['backlog']}{flag}"
        )
    for r in d["last_rejections"]:
        lines.append(f"  拒收 {r['at']} {r['origin'] or '?'}: {r['reason']}")
    for a in d["alerts"]:
        lines.append(f"  警报 {a['at']} {a['kind']} {a['station']}: {a['detail']}")
    return "\n".join(lines)


def cmd_conflicts(args: argparse.Namespace) -> None:
    hub = _hub(args)
    rows = operations.conflicts(hub, include_resolved=args.all)
    emit(
        {"conflicts": rows},
        args.json,
        lambda d: (
            "\n".join(
                f"{c['id']} {c['number'] or c['record']} {c['field']}: "
                + " vs ".join(f"{v['value']!r}@{v['origin']}{'（采用）' if v['won'] else ''}" for v in c["values"])
                + f"  规则: {c['rule']}"
                for c in d["conflicts"]
            )
            or "（无冲突）"
        ),
    )


def cmd_quarantine(args: argparse.Namespace) -> None:
    from hub.dashboard_data import quarantine_rows

    hub = _hub(args)
    rows = [
        {k: v for k, v in r.items() if k != "gloss"}
        for r in quarantine_rows(hub, origin=args.station, include_closed=args.all)
    ]

    def human(d: dict[str, Any]) -> str:
        lines = []
        for r in d["quarantined"]:
            who = (
                f"{r['sender']} 转交，声称来自 {r['origin']}（签名无法核验）"
                if r["relayed"]
                else f"{r['origin']} 第 {r['epoch']} 代 第 {r['seq']} 号"
            )
            lines.append(f"#{r['id']} [{r['state']}] {r['code'] or '-'}  {who}\n    {r['reason']}")
        return "\n".join(lines) or "（没有隔离待审的变更）"

    emit({"quarantined": rows}, args.json, human)


def cmd_catalogue(args: argparse.Namespace) -> None:
    from sync import catalogue_view

    hub = _hub(args)
    version, cat = hub.catalogue()
    emit(catalogue_view.listing(cat, version, args.tier), args.json, catalogue_view.listing_text)


def cmd_show(args: argparse.Namespace) -> None:
    hub = _hub(args)
    from hub.show_text import render

    emit(operations.show(hub, args.number, reveal=args.reveal), args.json, render)


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
    emit(result, args.json, _report_text)
    if out["outcome"] == "integrity_failed":
        print(
            f"sanji: the hub database failed its integrity check ({out['report']['integrity']}); "
            "stop the hub and restore from a backup",
            file=sys.stderr,
        )
        return 1
    return 0


def _report_text(d: dict[str, Any]) -> str:
    r = d["report"]
    if "warnings" not in r:
        return (
            f"夜间任务 {r['generated_at']}  数据库检查失败: {r['integrity']}\n请停机并从备份恢复（见 README 灾难恢复）"
        )
    w = r["warnings"]
    lines = [
        f"夜间任务 {r['generated_at']}  数据库检查: {r['integrity']}",
        f"对账站点 {d['stations_checked']}，发现不一致 {d['divergent']}，已修复 {d['repaired']}",
        f"红色预警（超期）{len(w['red'])} 件，黄色预警（临期）{len(w['yellow'])} 件，容缺材料逾期 "
        f"{len(w['materials_overdue'])} 项",
    ]
    lines += [f"  红 {x['number']} {x['item']} 时限 {x['due_date']}" for x in w["red"][:20]]
    lines += [f"  黄 {x['number']} {x['item']} 时限 {x['due_date']}" for x in w["yellow"][:20]]
    for s in r["statistics"]["per_station"]:
        lines.append(
            f"  {s['station']:<16} 受理 {s['accepted']}（今日 {s['accepted_today']}） 办结 {s['completed']}"
            f" 按时率 {s['on_time_rate'] if s['on_time_rate'] is not None else '-'}"
        )
    if r["not_seen"]:
        lines.append("多日未同步: " + ", ".join(str(x["station"]) for x in r["not_seen"]))
    if r.get("backup"):
        lines.append(f"备份: {r['backup']}（照片 {r.get('backup_blobs') or 0} 张）")
    partial = r.get("partial_uploads") or {}
    if partial.get("dropped"):
        lines.append(
            f"清理中断超过 {partial['retention_days']} 天的照片上传 {partial['dropped']} 个，"
            f"释放 {partial['bytes']} 字节"
        )
    return "\n".join(lines)


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
    rows = inspections.list_inspections(_hub(args), missing_only=args.missing, open_only=args.open, limit=None)
    emit({"inspections": rows}, args.json, _inspections_text)


def _inspections_text(d: dict[str, Any]) -> str:
    lines = []
    for i in d["inspections"]:
        due = f"期限 {i['due'] or '—'}" + ("（已逾期）" if i["overdue"] else "")
        result = inspections.RESULT_LABELS.get(i["result"], i["result"]) if i["result"] else "—"
        missing = len(i["missing_blobs"])
        files = f"缺 {missing} 个文件" if missing else ("—" if i["result"] is None else "文件齐全")
        lines.append(
            f"{i['number']}  {i['item_name'] or i['item']}  {i['inspector_name'] or i['inspector']}"
            f"（{i['inspector']}）  派单 {i['assigned_at'][:16].replace('T', ' ') or '—'}  {due}  "
            f"{inspections.TASK_LABELS.get(i['status'], i['status'])}  结论 {result}  照片 {i['photos']} 张  "
            f"{files}  办件{_status_label(i['application_status'])}"
        )
    return "\n".join(lines) or "（无踏勘任务）"


def _status_label(value: str) -> str:
    try:
        return STATUS_LABELS[Status(value)]
    except ValueError:
        return value or "—"
