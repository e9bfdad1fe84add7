"""`sanji demo`: a whole district on this machine, told step by step.

Every step runs the real `sanji` command (in this process, through the same entry point a person
types) except the hub, which runs as its own `sanji hub serve` process so that the demo can take it
down and bring it back like a real outage.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from present.webui import RULES, TIER_NAMES, field_label, status_label, value_text
from sync.identity import id_check_char

MARKER = ".sanji-demo"
ITEM_VILLAGE = "360802-0001"  # 城乡居民基本养老保险参保登记: immediate, township decides
ITEM_PROMISED = "360802-0004"  # 最低生活保障申请: promised, deferrable income statement
PEOPLE = [
    ("周秀英", "13907960001"),
    ("吴建国", "13907960002"),
    ("郑丽华", "13907960003"),
    ("王志强", "13907960004"),
    ("冯桂兰", "13907960005"),
    ("陈海波", "13907960006"),
]


def _id_number(n: int) -> str:
    """A made-up ID number with a valid check digit: demo data never names a real person."""
    body = f"36080219{60 + n:02d}0{(n % 9) + 1}1{n % 10}{n:03d}"[:17]
    return body + id_check_char(body)


# The `sanji` entry point (sanji.cli.main), handed in by the script so this module does not import it back.
Command = Callable[[list[str]], int]


class Story:
    def __init__(self, root: Path, port: int, command: Command) -> None:
        self.root = root
        self.command = command
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.hub_proc: subprocess.Popen[bytes] | None = None
        self.step_no = 0

    # -- telling --------------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.step_no += 1
        print(f"\n== {self.step_no}. {title}", flush=True)

    def say(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def sanji(self, *argv: str, expect: int = 0) -> dict[str, Any]:
        """Run one real `sanji` command with --json and return its document."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = self.command([*argv, "--json"])
        if code != expect:
            raise RuntimeError(f"`sanji {' '.join(argv)}` exited {code}, expected {expect}: {err.getvalue().strip()}")
        text = out.getvalue().strip()
        doc: dict[str, Any] = json.loads(text) if text else {}
        if err.getvalue().strip():
            doc["_stderr"] = err.getvalue().strip()
        return doc

    # -- the hub process -------------------------------------------------------------------------

    def hub_up(self) -> None:
        exe = Path(sys.executable).with_name("sanji")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "sanji.cli"]
        log = (self.root / "hub.log").open("ab")
        self.hub_proc = subprocess.Popen(
            [*cmd, "hub", "serve", str(self.root / "hub"), "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"区局服务没有启动：请查看 {self.root / 'hub.log'}")

    def hub_down(self) -> None:
        if self.hub_proc is not None:
            self.hub_proc.send_signal(signal.SIGTERM)
            try:
                self.hub_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.hub_proc.kill()
                self.hub_proc.wait()
            self.hub_proc = None

    def demo_operator(self) -> str:
        """A dashboard login for the person watching the demo, made with the real add-operator command."""
        password = secrets.token_urlsafe(9)
        saved = sys.stdin
        sys.stdin = io.StringIO(password + "\n")
        try:
            self.sanji("hub", "add-operator", str(self.root / "hub"), "--user", "demo")
        finally:
            sys.stdin = saved
        return password

    # -- the story --------------------------------------------------------------------------------

    def accept(self, node: str, n: int, item: str = ITEM_VILLAGE, defer: bool = False) -> dict[str, Any]:
        name, phone = PEOPLE[n % len(PEOPLE)]
        args = [
            "node",
            "accept",
            str(self.root / node),
            "--item",
            item,
            "--name",
            name,
            "--id-number",
            _id_number(n),
            "--phone",
            phone,
            "--address",
            f"兴桥镇{n + 1}组",
        ]
        if item == ITEM_PROMISED:
            args += ["--material", "居民身份证", "--material", "户口簿", "--material", "家庭经济状况核对授权书"]
            args += ["--defer" if defer else "--material", "家庭收入情况声明"]
        else:
            args += ["--material", "居民身份证", "--material", "户口簿"]
        return self.sanji(*args)

    def tell(self) -> None:
        r = self.root
        self.step("区行政审批局建立枢纽 / the district hub is created with catalogue release 1")
        hub = self.sanji("hub", "init", str(r / "hub"), "--district", "360802", "--name", "吉州区")
        self.say(f"区局 {hub['hub_id']}，事项目录 v{hub['catalogue_version']}（54 个事项，2026 年工作日历）")
        tokens = {}
        for code, name, tier, parent in (
            ("360802-T01", "兴桥镇便民服务中心", "township", ""),
            ("360802-T01-01", "兴桥镇岗塘村便民服务站", "village", "360802-T01"),
            ("360802-T01-05", "兴桥镇塅口村便民服务站", "village", "360802-T01"),
        ):
            args = ["hub", "enroll", str(r / "hub"), "--station", code, "--name", name, "--tier", tier]
            tokens[code] = self.sanji(*args, *(["--parent", parent] if parent else []))["token"]
            self.say(f"已登记 {code} {name}（{TIER_NAMES[tier]}），发放一次性令牌")
        self.hub_up()
        self.say(f"区局服务已启动：{self.url}")
        folders = (("360802-T01", "township"), ("360802-T01-01", "gangtang"), ("360802-T01-05", "duankou"))
        for code, folder in folders:
            info = self.sanji("node", "init", str(r / folder), "--hub", self.url, "--token", tokens[code])
            self.say(f"{folder}：本机生成密钥，固定区局密钥，事项目录 v{info['catalogue_version']} 已核验")

        self.step("断网：枢纽停机，村站照常受理 / the hub goes down; villages keep accepting offline")
        self.hub_down()
        numbers: dict[str, list[str]] = {"gangtang": [], "duankou": []}
        for i in range(3):
            numbers["gangtang"].append(self.accept("gangtang", i)["number"])
        numbers["duankou"].append(self.accept("duankou", 3, ITEM_PROMISED, defer=True)["number"])
        numbers["duankou"].append(self.accept("duankou", 4)["number"])
        for node, nums in numbers.items():
            self.say(f"{node} 离线受理 {len(nums)} 件：{'、'.join(nums)}")
        self.say("最低生活保障申请已受理，家庭收入情况声明容缺后补；办结时限按工作日计算")
        res = self.sanji("node", "sync", str(r / "gangtang"), expect=3)
        status = self.sanji("node", "status", str(r / "gangtang"))
        self.say(f"gangtang 尝试同步：连不上区局（退出码 3），没有数据丢失，{status['pending']} 条变更在队列中等待")

        self.step("恢复：枢纽重启，各站同步 / the hub is back; every station syncs")
        self.hub_up()
        for node in ("gangtang", "duankou", "township"):
            res = self.sanji("node", "sync", str(r / node))
            self.say(f"{node}：上传 {res['pushed']}，下载 {res['pulled']}，待传 {res['pending']}")
        hub_apps = self.sanji("hub", "applications", str(r / "hub"))["applications"]
        self.say(f"区局现有 {len(hub_apps)} 件办件，每件恰好一份，且都已核验为受理站点所签")
        again = self.sanji("node", "sync", str(r / "gangtang"))
        self.say(f"再同步一次什么也不变（上传 {again['pushed']}）：重复上传不会重复入库")

        self.step("决定下行：区局审批、镇级办结 / decisions flow back down")
        promised = numbers["duankou"][0]
        # 最低生活保障申请 needs an on-site inspection; with none this time, the approval states why.
        self.sanji("hub", "transition", str(r / "hub"), promised, "--to", "under_review", "--note", "材料齐全")
        override = ["--override-reason", "上月已对同一住址现场踏勘"]
        self.sanji("hub", "transition", str(r / "hub"), promised, "--to", "approved", "--note", "材料齐全", *override)
        self.say(f"区局：{promised} → 审查中 → 准予许可（未再现场踏勘，理由已记入办件记录）")
        immediate = numbers["gangtang"][0]
        self.sanji("node", "transition", str(r / "township"), immediate, "--to", "completed", "--note", "当场办结")
        self.say(f"兴桥镇（为所辖各村决定城乡居民养老保险参保登记）：{immediate} → 办结")
        self.sanji("node", "sync", str(r / "township"))
        for node in ("gangtang", "duankou"):
            self.sanji("node", "sync", str(r / node))
        for node, number in (("gangtang", immediate), ("duankou", promised)):
            apps = self.sanji("node", "applications", str(r / node))["applications"]
            st = next(a["status"] for a in apps if a["number"] == number)
            self.say(f"{node} 看到 {number}：{status_label(st)}")

        self.step("并发修改：村站与区局同时改备注 / a concurrent edit becomes a visible conflict")
        target = numbers["gangtang"][1]
        self.sanji(
            "node",
            "transition",
            str(r / "gangtang"),
            target,
            "--to",
            "supplement_requested",
            "--note",
            "请补充户口簿复印件",
        )
        self.sanji("hub", "transition", str(r / "hub"), target, "--to", "under_review", "--note", "转入审查")
        self.sanji("node", "sync", str(r / "gangtang"))
        conflicts = self.sanji("hub", "conflicts", str(r / "hub"))["conflicts"]
        for c in conflicts:
            vals = " 对 ".join(
                f"{value_text(c['field'], v['value'])}（来自 {v['origin']}{'，保留' if v['won'] else ''}）"
                for v in c["values"]
            )
            self.say(f"冲突：{c['number']} 的{field_label(c['field'])}：{vals}")
            self.say(f"  规则：{RULES.get(c['rule'], c['rule'])}")

        self.step("U 盘：塅口村离线导出，人工带到区局 / a batch travels by USB stick")
        self.hub_down()
        numbers["duankou"].append(self.accept("duankou", 5)["number"])
        usb = r / "usb-stick"
        out = self.sanji("node", "export", str(r / "duankou"), "--out", str(usb / "to-hub"))
        self.say(f"duankou 导出 {len(out['files'])} 个加密、签名的批次文件（{out['changes']} 条变更）")
        imp = self.sanji("hub", "import", str(r / "hub"), str(usb / "to-hub"))
        self.say(f"区局导入：接收 {imp['accepted']}，重复 {imp['duplicates']}，拒收 {len(imp['rejected'])}")
        back = self.sanji(
            "hub", "export", str(r / "hub"), "--station", "360802-T01-05", "--out", str(usb / "to-station")
        )
        self.sanji("node", "import", str(r / "duankou"), str(usb / "to-station"))
        status = self.sanji("node", "status", str(r / "duankou"))
        self.say(
            f"区局的下行数据和签名回执带回（{len(back['files'])} 个文件）；"
            f"duankou 待传 {status['pending']}：已送达区行政审批局"
        )

        self.inspection()

        self.step("汇总 / the sync picture")
        s = self.sanji("hub", "status", str(r / "hub"))
        self.say(
            f"办件 {s['applications']}，未解决冲突 {s['conflicts']}，隔离待审 {s['quarantined']}，"
            f"拒收批次 {s['rejected_batches']}"
        )
        for st in s["stations"]:
            self.say(
                f"  {st['code']:<14} {TIER_NAMES.get(st['tier'], st['tier']):<5} 办件 {st['applications']}  "
                f"最近同步 {st['last_seen'] or '从未'}"
            )

    def inspection(self) -> None:
        """A field device receives a task, records a report with photos offline, syncs, and purges."""
        r, hub = self.root, str(self.root / "hub")
        self.step("现场踏勘：区局派单，踏勘设备离线记录 / an on-site inspection, recorded offline with photos")
        self.hub_up()
        token = self.sanji(
            "hub", "enroll", hub, "--station", "360802-F01", "--name", "区局踏勘一号", "--tier", "field"
        )["token"]
        self.sanji("node", "init", str(r / "inspector"), "--hub", self.url, "--token", token)
        number = self.accept("duankou", 6, ITEM_PROMISED)["number"]
        self.sanji("node", "sync", str(r / "duankou"))
        self.sanji("hub", "transition", hub, number, "--to", "under_review")
        task = self.sanji("hub", "inspect", hub, number, "--inspector", "360802-F01")
        self.say(f"区局把 {number} 的踏勘派给踏勘设备 360802-F01（期限 {task['due']}）：踏勘中，时限暂停")
        self.sanji("node", "sync", str(r / "inspector"))
        self.hub_down()
        camera = r / "camera"
        camera.mkdir()
        shots = []
        for i, size in enumerate((700_000, 300_000)):  # stand-ins for photos: only their hashes matter
            (camera / f"IMG_{i + 1:04d}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(size))
            shots += ["--photo", str(camera / f"IMG_{i + 1:04d}.jpg")]
        rep = self.sanji(
            "node",
            "report",
            str(r / "inspector"),
            task["task"],
            "--result",
            "pass",
            "--finding",
            "房屋老旧，家庭收入情况属实",
            "--gps",
            "27.1167,114.9833,8",
            *shots,
        )
        self.say(
            f"现场离线：报告已记录，照片 {len(rep['photos'])} 张按 SHA-256 保存"
            f"（{'、'.join(h[:12] + '…' for h in rep['photos'])}）"
        )
        self.hub_up()
        res = self.sanji("node", "sync", str(r / "inspector"), "--retention-days", "0")
        self.say(
            f"回到有网处：先上传报告（{res['pushed']} 条变更），再按 256 KiB 分块上传照片"
            f"（{res['blobs']['sent_chunks']} 块，区局已核验 {res['blobs']['complete']} 张）"
        )
        missing = self.sanji("hub", "show", hub, number)["inspections"][0]["missing_blobs"]
        self.say(f"hub show：列出报告和照片摘要，区局缺少的照片：{len(missing)} 张")
        self.sanji("hub", "transition", hub, number, "--to", "approved", "--note", "踏勘属实")
        self.sanji("node", "sync", str(r / "duankou"))
        st = next(
            a for a in self.sanji("node", "applications", str(r / "duankou"))["applications"] if a["number"] == number
        )
        self.say(f"区局准予许可；duankou 看到 {number}：{status_label(st['status'])}，办结时限 {st['due_date']}")
        self.say(
            f"踏勘设备已删除照片和群众的地址、电话（{len(res['purged']['purged'])} 份报告；演示保留 0 天，默认 7 天）"
        )


def command_name() -> str:
    """How to type `sanji` in this shell: plain `sanji` when PATH finds this very script, else its path.

    `make demo` runs .venv/bin/sanji without activating the venv, so hints saying `sanji …` met
    "command not found" (issue 14 item 7)."""
    script = Path(sys.executable).with_name("sanji")
    found = shutil.which("sanji")
    if found and script.exists() and Path(found).resolve() == script.resolve():
        return "sanji"
    if not script.exists():
        return f"{sys.executable} -m sanji.cli"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


def run_demo(root: Path, *, once: bool, port: int, command: Command) -> int:
    root = root.resolve()
    if root.exists():
        if not (root / MARKER).exists():
            print(
                f"sanji: {root} 已存在且不是演示文件夹，不会动它：请用 --dir 换一个文件夹 (not a demo folder)",
                file=sys.stderr,
            )
            return 2
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by sanji demo; safe to delete\n", encoding="utf-8")
    os.environ.setdefault("SANJI_DEMO", "1")
    story = Story(root, port, command)
    print(f"三级 Sanji 演示：在本机模拟一个区（{root}）")
    try:
        story.tell()
        password = story.demo_operator()
        print(f"\n区局管理页面：{story.url}/   用户名 demo，密码 {password}（仅供本次演示）")
        sanji = command_name()
        print(f"村站窗口：{sanji} node serve {root / 'gangtang'} --port 8710，然后打开 http://127.0.0.1:8710/")
        print(f"试试：{sanji} hub status {root / 'hub'}   ·   {sanji} node status {root / 'gangtang'}")
        if sanji != "sanji":
            print("（sanji 不在 PATH 上：先运行 source .venv/bin/activate，之后直接输入 sanji 即可）")
        if once:
            return 0
        print("区局服务继续运行；按 Ctrl-C 停止。")
        assert story.hub_proc is not None
        story.hub_proc.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        story.hub_down()
