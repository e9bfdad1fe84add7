"""The arguments of `sanji node ...`: every subcommand, its flags and their help (the commands
themselves are node/cli.py's, dispatched by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node import relay_cargo, staff_cli
from node.supplement import add_command as add_supplement
from present.output import STATUS_CHOICES, command_adder


def add_parser(sub: Any) -> None:
    node = sub.add_parser("node", help="站点（村、社区、乡镇、街道）或踏勘设备").add_subparsers(
        dest="cmd", required=True
    )

    cmd = command_adder(node, "本站的文件夹（站点数据都在里面）")

    p = cmd("init", "生成本站密钥，向区局登记接入，固定区局密钥，下载事项目录")
    p.add_argument("--hub", default="", help="区局地址，如 http://10.1.2.3:8700（仅用U盘的站点不填）")
    p.add_argument("--token", help="区局 sanji hub enroll 发放的一次性令牌（用 --enrollment 时也要）")
    p.add_argument("--enrollment", type=Path, help="从区局带来的登记文件（没有网络时接入）")
    p.add_argument("--relay", default="", help="乡镇转发站地址（连不上区局时经乡镇转发），如 http://10.1.5.1:8720")
    p = cmd("serve", "在本机 127.0.0.1 提供窗口工作页面，并在后台定时同步；乡镇加 --relay-port 为下辖村转发")
    p.add_argument("--port", type=int, default=8710, help="工作页面的端口（默认 8710）")
    p.add_argument("--interval", type=float, default=30.0, help="两轮同步之间的秒数（默认 30）")
    p.add_argument("--nightly", default="02:00", help="夜间任务的时间 HH:MM（默认 02:00）")
    relay_cargo.add_serve_arguments(p)  # --relay-port, --relay-host (a township's relay listener)
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
    p = cmd("sync", "立即同步一轮：先上传，再下载，再传照片；然后清理区局已收到的内容（连不上区局时经乡镇转发站）")
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
    p = cmd("export", "把待上传的变更写成文件，用U盘带到区局（或乡镇）；乡镇加 --for 导出区局发给下辖村的文件")
    p.add_argument("--out", type=Path, required=True, help="写到哪个文件夹（如U盘）")
    p.add_argument("--for", dest="village", default="", help="乡镇：导出区局发给这个下辖村的文件（村站点编码）")
    p = cmd("import", "导入从区局用U盘带来的文件；乡镇也收下辖村U盘上的文件，下次同步时转交区局")
    p.add_argument("paths", type=Path, nargs="+", help="文件或文件夹（如U盘）")
    cmd("status", "本站情况：待上传、最近同步、事项目录、区局密钥、乡镇转发（转发站、转发队列、异常）")
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
    cmd("relay-reset", "解除对乡镇中转站的暂停：确认是误报后使用")
    staff_cli.add_arguments(node.choices, cmd)  # --staff, init --admin, add-admin (issue 16)
