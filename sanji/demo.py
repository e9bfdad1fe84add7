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
        raise RuntimeError(f"the hub did not start; see {self.root / 'hub.log'}")

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
        self.say(f"hub {hub['hub_id']}, 事项目录 v{hub['catalogue_version']} (54 items, 2026 working-day calendar)")
        tokens = {}
        for code, name, tier, parent in (
            ("360802-T01", "兴桥镇便民服务中心", "township", ""),
            ("360802-T01-01", "兴桥镇岗塘村便民服务站", "village", "360802-T01"),
            ("360802-T01-05", "兴桥镇塅口村便民服务站", "village", "360802-T01"),
        ):
            args = ["hub", "enroll", str(r / "hub"), "--station", code, "--name", name, "--tier", tier]
            tokens[code] = self.sanji(*args, *(["--parent", parent] if parent else []))["token"]
            self.say(f"enrolled {code} {name} ({tier}); one-time token issued")
        self.hub_up()
        self.say(f"hub serving on {self.url}")
        folders = (("360802-T01", "township"), ("360802-T01-01", "gangtang"), ("360802-T01-05", "duankou"))
        for code, folder in folders:
            info = self.sanji("node", "init", str(r / folder), "--hub", self.url, "--token", tokens[code])
            self.say(f"{folder}: keys made locally, hub keys pinned, catalogue v{info['catalogue_version']} verified")

        self.step("断网：枢纽停机，村站照常受理 / the hub goes down; villages keep accepting offline")
        self.hub_down()
        numbers: dict[str, list[str]] = {"gangtang": [], "duankou": []}
        for i in range(3):
            numbers["gangtang"].append(self.accept("gangtang", i)["number"])
        numbers["duankou"].append(self.accept("duankou", 3, ITEM_PROMISED, defer=True)["number"])
        numbers["duankou"].append(self.accept("duankou", 4)["number"])
        for node, nums in numbers.items():
            self.say(f"{node} accepted {len(nums)} application(s): {', '.join(nums)}")
        self.say("最低生活保障申请 accepted with 家庭收入情况声明 deferred (容缺): due date counted in working days")
        res = self.sanji("node", "sync", str(r / "gangtang"), expect=3)
        status = self.sanji("node", "status", str(r / "gangtang"))
        self.say(
            f"gangtang tries to sync: hub unreachable (exit 3), nothing lost, {status['pending']} change(s) queued"
        )

        self.step("恢复：枢纽重启，各站同步 / the hub is back; every station syncs")
        self.hub_up()
        for node in ("gangtang", "duankou", "township"):
            res = self.sanji("node", "sync", str(r / node))
            self.say(f"{node}: pushed {res['pushed']}, pulled {res['pulled']}, pending {res['pending']}")
        hub_apps = self.sanji("hub", "applications", str(r / "hub"))["applications"]
        self.say(
            f"hub now holds {len(hub_apps)} application(s), each exactly once, each verified as signed "
            "by the station that took it"
        )
        again = self.sanji("node", "sync", str(r / "gangtang"))
        self.say(f"syncing again changes nothing (pushed {again['pushed']}): ingest is idempotent")

        self.step("决定下行：区局审批、镇级办结 / decisions flow back down")
        promised = numbers["duankou"][0]
        # 最低生活保障申请 needs an on-site inspection; with none this time, the approval states why.
        self.sanji("hub", "transition", str(r / "hub"), promised, "--to", "under_review", "--note", "材料齐全")
        override = ["--override-reason", "上月已对同一住址现场踏勘"]
        self.sanji("hub", "transition", str(r / "hub"), promised, "--to", "approved", "--note", "材料齐全", *override)
        self.say(f"hub: {promised} → under_review → approved (no new inspection: the reason is on record)")
        immediate = numbers["gangtang"][0]
        self.sanji("node", "transition", str(r / "township"), immediate, "--to", "completed", "--note", "当场办结")
        self.say(f"township 兴桥镇 (decides 城乡居民养老保险参保登记 for its villages): {immediate} → completed")
        self.sanji("node", "sync", str(r / "township"))
        for node in ("gangtang", "duankou"):
            self.sanji("node", "sync", str(r / node))
        for node, number in (("gangtang", immediate), ("duankou", promised)):
            apps = self.sanji("node", "applications", str(r / node))["applications"]
            st = next(a["status"] for a in apps if a["number"] == number)
            self.say(f"{node} sees {number}: {st}")

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
            vals = " vs ".join(f"{v['value']!r} from {v['origin']}{' (kept)' if v['won'] else ''}" for v in c["values"])
            self.say(f"conflict on {c['number']} {c['field']}: {vals}")
            self.say(f"  rule: {c['rule']}")

        self.step("U 盘：塅口村离线导出，人工带到区局 / a batch travels by USB stick")
        self.hub_down()
        numbers["duankou"].append(self.accept("duankou", 5)["number"])
        usb = r / "usb-stick"
        out = self.sanji("node", "export", str(r / "duankou"), "--out", str(usb / "to-hub"))
        self.say(f"duankou exported {len(out['files'])} sealed, signed batch file(s) ({out['changes']} change)")
        imp = self.sanji("hub", "import", str(r / "hub"), str(usb / "to-hub"))
        self.say(
            f"hub imported: accepted {imp['accepted']}, duplicates {imp['duplicates']}, rejected {len(imp['rejected'])}"
        )
        back = self.sanji(
            "hub", "export", str(r / "hub"), "--station", "360802-T01-05", "--out", str(usb / "to-station")
        )
        self.sanji("node", "import", str(r / "duankou"), str(usb / "to-station"))
        status = self.sanji("node", "status", str(r / "duankou"))
        self.say(
            f"hub's feed and signed receipts carried back ({len(back['files'])} files); "
            f"duankou pending now {status['pending']}: 已送达区行政审批局"
        )

        self.inspection()

        self.step("汇总 / the sync picture")
        s = self.sanji("hub", "status", str(r / "hub"))
        self.say(
            f"applications {s['applications']}, open conflicts {s['conflicts']}, quarantined {s['quarantined']}, "
            f"rejected batches {s['rejected_batches']}"
        )
        for st in s["stations"]:
            self.say(
                f"  {st['code']:<14} {st['tier']:<9} applications {st['applications']}  "
                f"last seen {st['last_seen'] or 'never'}"
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
        self.say(f"hub assigns {number} to field device 360802-F01 (due {task['due']}): 踏勘, 时限暂停")
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
            f"offline on site: report recorded, {len(rep['photos'])} photos kept by SHA-256 "
            f"({', '.join(h[:12] + '…' for h in rep['photos'])})"
        )
        self.hub_up()
        res = self.sanji("node", "sync", str(r / "inspector"), "--retention-days", "0")
        self.say(
            f"back online: report pushed first ({res['pushed']} changes), then photos in 256 KiB chunks "
            f"({res['blobs']['sent_chunks']} chunks, {res['blobs']['complete']} photos verified at the hub)"
        )
        missing = self.sanji("hub", "show", hub, number)["inspections"][0]["missing_blobs"]
        self.say(f"hub show: report and photo hashes listed, photos missing at the hub: {len(missing)}")
        self.sanji("hub", "transition", hub, number, "--to", "approved", "--note", "踏勘属实")
        self.sanji("node", "sync", str(r / "duankou"))
        st = next(
            a for a in self.sanji("node", "applications", str(r / "duankou"))["applications"] if a["number"] == number
        )
        self.say(f"hub approves; duankou sees {number}: {st['status']}, due date {st['due_date']}")
        self.say(
            f"the device purged its photos and the citizen's address and phone "
            f"({len(res['purged']['purged'])} report; retention 0 days for the demo, 7 by default)"
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
            print(f"sanji: {root} exists and is not a demo folder; choose another --dir", file=sys.stderr)
            return 2
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by sanji demo; safe to delete\n", encoding="utf-8")
    os.environ.setdefault("SANJI_DEMO", "1")
    story = Story(root, port, command)
    print(f"三级 Sanji demo: a district on this machine, in {root}")
    try:
        story.tell()
        password = story.demo_operator()
        print(f"\nDashboard: {story.url}/   log in as demo / {password} (a login made for this demo only)")
        sanji = command_name()
        print(f"Station window: {sanji} node serve {root / 'gangtang'} --port 8710, then http://127.0.0.1:8710/")
        print(f"Try: {sanji} hub status {root / 'hub'}   ·   {sanji} node status {root / 'gangtang'}")
        if sanji != "sanji":
            print("（sanji 不在 PATH 上：先运行 source .venv/bin/activate，之后直接输入 sanji 即可）")
        if once:
            return 0
        print("The hub keeps serving; press Ctrl-C to stop.")
        assert story.hub_proc is not None
        story.hub_proc.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        story.hub_down()
