"""What a new user met walking the README through staff accounts and the township relay (issues 16 and
17) by hand, each mended so the words say what happened and what to do next."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest

from hub import enrolment, keyring, seal_prune
from node import enrolment as node_enrolment
from node import uplink
from node.enrolment import init_from_file
from node.station import Station
from node.sync_text import export_text, relay_text
from replica.errors import Refused, Unreachable
from sanji.cli import main as sanji
from tests.conftest import World


def _run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, str]:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = sanji(list(argv))
    finally:
        sys.stdin = old
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_passwd_without_a_second_line_asks_for_the_second_line(tmp_path: Path) -> None:
    from node.staff_cli import read_password

    old = sys.stdin
    sys.stdin = io.StringIO("当前密码-12345\n")
    try:
        assert read_password("当前密码") == "当前密码-12345"
        with pytest.raises(Refused) as refused:
            read_password("新密码", second=True)
    finally:
        sys.stdin = old
    # It was "请在标准输入第一行给出" for the new password, which is the second line.
    assert refused.value.code == "password_required"
    assert "第二行" in str(refused.value) and "第一行给出" not in str(refused.value)
    sys.stdin = io.StringIO("")
    try:
        with pytest.raises(Refused) as first:
            read_password("当前密码", pair=True)
    finally:
        sys.stdin = old
    assert "第一行给出" in str(first.value) and "printf" in str(first.value)  # passwd's two lines, shown


def test_an_unknown_retired_key_names_a_command_that_lists_them(world: World) -> None:
    keyring.rotate_key(world.hub, seal=True)
    with pytest.raises(Refused) as refused:
        seal_prune.prune(world.hub, key_id="0000000000000000")
    # `hub status` shows only the current sealing key; the dry run lists the retired ones.
    assert refused.value.code == "seal_key_unknown"
    assert "--dry-run" in str(refused.value) and "hub status" not in str(refused.value)
    listed = seal_prune.prune(world.hub, before="2099-01-01", dry_run=True)
    assert listed["would_remove"]


def test_init_with_the_hub_out_of_reach_names_the_offline_way_in(tmp_path: Path) -> None:
    with pytest.raises(Unreachable) as unreachable:
        node_enrolment.init_online(tmp_path / "v", "http://127.0.0.1:9", "SJT-7K2M-Q9XD-4HPA-RT3W-60WC-Q6FW-JJG5")
    assert "--enrollment" in str(unreachable.value) and "--relay" in str(unreachable.value)
    assert not (tmp_path / "v").exists()


def test_hub_import_says_which_stations_a_claim_enrolled(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.clock.ms = int(time.time() * 1000)  # the CLI stamps with the real clock; the token must be open
    world.station("T1", "township")
    token = world.register("T1-V1", "village", "T1")
    (tmp_path / "v1.sje").write_bytes(enrolment.enrolment_file(world.hub, "T1-V1", token))
    init_from_file(tmp_path / "v1", tmp_path / "v1.sje", token=token)
    st = Station(tmp_path / "v1", clock=world.clock)
    (tmp_path / "stick").mkdir()
    (tmp_path / "stick" / "T1-V1_claim.sjc").write_bytes(uplink.claim_file(st))
    forged_claim = uplink.claim_file(st).replace(st.keys.sign_pub, bytes(32))  # no open token made its proof
    st.close()
    world.hub.close()
    code, out = _run(capsys, "hub", "import", str(world.root / "hub"), str(tmp_path / "stick"), "--json")
    assert code == 0, out
    assert json.loads(out)["claimed"] == ["T1-V1"]
    code, out = _run(capsys, "hub", "import", str(world.root / "hub"), str(tmp_path / "stick"))
    assert code == 0 and "站点 T1-V1 已确认接入" in out
    # A claim no open token vouches for is refused in words staff read, not English alone.
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "T1-V1_claim.sjc").write_bytes(forged_claim)
    code, out = _run(capsys, "hub", "import", str(world.root / "hub"), str(forged), "--json")
    (row,) = json.loads(out)["rejected"]
    assert code == 2 and "接入确认文件与区局发出的登记令牌不符" in row["reason"] and "hub enroll" in row["reason"]


def test_sync_through_the_relay_says_so() -> None:
    assert relay_text({"via": "hub", "relayed_batches": 0, "pending": 0}) == ""
    waiting = relay_text({"via": "relay", "relayed_batches": 2, "pending": 5})
    assert "经乡镇转发站" in waiting and "2 批已交乡镇" in waiting
    # Once the hub's receipt came back nothing is waiting there: no batch is said to be.
    assert relay_text({"via": "relay", "relayed_batches": 1, "pending": 0}) == "；经乡镇转发站同步"


def test_export_for_a_village_says_whose_files_and_what_to_do_when_none() -> None:
    none = export_text({"files": [], "village": "360802-T01-05"}, "/media/usb")
    assert "没有区局发给 360802-T01-05" in none and "sanji node import" in none and "sanji node sync" in none
    some = export_text({"files": ["a.sjd"], "village": "360802-T01-05"}, "/media/usb")
    assert "1 个区局发给 360802-T01-05 的文件" in some and "条变更" not in some
    own = export_text({"files": ["a", "b"], "changes": 3}, "/media/usb")
    assert own == "已写出 2 个文件（3 条变更）到 /media/usb"


def test_the_station_terminal_speaks_chinese() -> None:
    """`node serve` runs in a terminal staff watch: every line the station logs starts in Chinese (the
    developer's words may follow in brackets), as its refusals do."""
    import ast

    from tests.test_refusal_words import chinese_first

    root = Path(__file__).resolve().parent.parent
    english, checked = [], 0
    for path in sorted((root / "node").rglob("*.py")):
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            if not (isinstance(call.func.value, ast.Name) and call.func.value.id == "log"):
                continue
            first = call.args[0] if call.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value != "%s":
                checked += 1
                if not chinese_first(first.value):
                    english.append(f"{path.relative_to(root)}:{call.lineno}: {first.value[:60]}")
    assert checked >= 8 and english == []


def test_the_usb_and_sync_help_tells_a_township_what_it_does_for_its_villages() -> None:
    import argparse

    from sanji.cli import build_parser

    def described(parser: argparse.ArgumentParser, *path: str) -> str:
        for name in path:
            (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            parser = sub.choices[name]
        return parser.description or ""

    parser = build_parser()
    assert "下辖村" in described(parser, "node", "import") and "转交区局" in described(parser, "node", "import")
    assert "--for" in described(parser, "node", "export")
    assert "乡镇转发" in described(parser, "node", "sync") and "转发" in described(parser, "node", "status")
    assert "--relay-port" in described(parser, "node", "serve")


def test_a_reader_that_stops_early_is_no_internal_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`sanji node applications V | head -1` printed 内部错误 … BrokenPipeError, asking staff to report it."""
    import os

    from present.output import EXIT_BROKEN_PIPE, run

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (head) has gone
    old = sys.stdout
    sys.stdout = os.fdopen(write_end, "w")
    try:

        def listing() -> None:
            for _ in range(100_000):
                print("360802-T01-05-20261205-00001  受理")
            sys.stdout.flush()

        code = run(listing)
        sys.stdout.write("the flush at exit has nowhere to fail now\n")
        sys.stdout.flush()
    finally:
        sys.stdout.close()
        sys.stdout = old
    assert code == EXIT_BROKEN_PIPE
    assert "内部错误" not in capsys.readouterr().err


def test_passwd_and_add_admin_say_where_accounts_come_from(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.station("360802-T01", "township")
    village = world.station("360802-T01-05", "village", "360802-T01")
    folder = str(village.folder)
    for extra in ([], ["--user", "lisi"]):
        stdin = "old-password-1\nnew-password-2\n"
        code, out = _run(capsys, "node", "passwd", folder, "--staff", "wang", *extra, stdin=stdin)
        assert code == 2 and "还没有工作人员账户" in out and "sanji node add-admin" in out
    code, out = _run(capsys, "node", "add-admin", folder, "--user", "wang", "--name", "王五", stdin="wang-password-1\n")
    assert code == 0, out
    code, out = _run(capsys, "node", "add-admin", folder, "--user", "zhao", "--name", "赵六", stdin="zhao-password-1\n")
    assert code == 2 and "sanji hub add-staff" in out


def test_a_relayed_batch_of_a_village_whose_claim_is_still_on_its_stick_says_so(world: World, tmp_path: Path) -> None:
    """Walked by hand: a village enrolled by file synced through its honest township before its claim
    reached the district; the hub named the township for a forged batch and said nothing of the claim."""
    from hub.ingest import ingest_frame
    from sync.session import AckResult

    world.station("T1", "township")
    token = world.register("T1-V1", "village", "T1")
    (tmp_path / "v1.sje").write_bytes(enrolment.enrolment_file(world.hub, "T1-V1", token))
    init_from_file(tmp_path / "v1", tmp_path / "v1.sje", token=token)
    st = Station(tmp_path / "v1", clock=world.clock)
    world.stations.append(st)
    world.accept(st, "360802-0001")
    frame = world.frames(st)[0]
    assert ingest_frame(world.hub, frame, source="relay:T1@10.1.5.1").result is AckResult.REJECTED
    (alert,) = [a for a in world.hub.store.alerts() if a["kind"] == "relay_seen"]
    assert "T1-V1_claim.sjc" in str(alert["detail"]) and "sanji hub import" in str(alert["detail"])
    # Once the claim is in, a batch signed by a key the hub does not know is plain forgery again.
    from hub.relay_alerts import _unclaimed

    assert _unclaimed(world.hub.store, "T1-V1", "unknown_key: x") != ""
    enrolment.accept_claim(world.hub, uplink.claim_file(st))
    assert _unclaimed(world.hub.store, "T1-V1", "unknown_key: x") == ""
    assert _unclaimed(world.hub.store, "T1", "unknown_key: x") == ""  # a station whose keys are pinned


def test_a_township_out_of_reach_of_the_hub_says_its_villages_cargo_waits(world: World) -> None:
    """Walked by hand: `node sync T` with the hub down said "0 条变更已保存在本站" and nothing of the
    village batch its relay held, as if it were gone."""
    import asyncio

    from node import client
    from node.relay_queue import RelayQueue, now_ms

    township = world.station("360802-T01", "township")
    village = world.station("360802-T01-05", "village", "360802-T01")
    world.accept(village, "360802-0001")
    queue = RelayQueue(township.folder, township.code)
    queue.offer_up(world.frames(village), now_ms())
    queue.close()
    with pytest.raises(Unreachable) as gone:
        asyncio.run(client.sync_round(township, "http://127.0.0.1:9"))
    assert "下辖村交来的 1 个转发件也在本站等候" in str(gone.value)
    with pytest.raises(Unreachable) as plain:
        asyncio.run(client.sync_round(village, "http://127.0.0.1:9"))
    assert "转发件" not in str(plain.value)


def test_a_township_importing_a_village_stick_says_what_it_keeps_and_what_it_does_not(world: World) -> None:
    from node import usb_files
    from node.sync_text import import_notes

    world.clock.ms = int(time.time() * 1000)
    township = world.station("360802-T01", "township")
    village = world.station("360802-T01-05", "village", "360802-T01")
    world.accept(village, "360802-0001")
    with village.transaction():
        village.meta.set("enrolled", False)  # as after an offline enrolment: its stick carries its claim
    stick = world.root / "stick"
    usb_files.export(village, stick)
    out = usb_files.import_files(township, [stick])
    assert out["claims_for_hub"] == []  # its own village's claim is relay cargo now, forwarded first
    assert [r["village"] for r in out["relayed"] if r.get("kind") == "claim"] == ["360802-T01-05"]
    words = import_notes(out)
    assert "下辖村交来的转发件" in words and "360802-T01-05 的接入确认文件（离线登记）本站下次同步时" in words
    other = import_notes({"relayed": [], "claims_for_hub": ["360802-T02-01"]})
    assert "360802-T02-01_claim.sjc" in other and "不是本乡镇下辖村的" in other and "sanji hub import" in other
    assert import_notes({"relayed": [], "claims_for_hub": []}) == ""


def test_python_dash_m_sanji_runs_the_cli() -> None:
    import subprocess

    shown = subprocess.run(
        [sys.executable, "-m", "sanji", "node", "passwd", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "修改本人密码" in shown


def test_init_by_file_says_the_claim_must_reach_the_district_and_names_the_relay(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.station("T1", "township")
    token = world.register("T1-V1", "village", "T1")
    (tmp_path / "v1.sje").write_bytes(enrolment.enrolment_file(world.hub, "T1-V1", token))
    folder = str(tmp_path / "v1")
    code, out = _run(
        capsys, "node", "init", folder, "--enrollment", str(tmp_path / "v1.sje"), "--token", token,
        "--relay", "http://10.1.5.1:8720",
    )  # fmt: skip
    assert code == 0, out
    assert "乡镇转发站 http://10.1.5.1:8720" in out and "sanji hub import" in out and "乡镇不转交" in out


def test_the_hubs_refusal_of_forwarded_batches_reads_as_a_sentence() -> None:
    """Walked by hand: `node sync T` printed "转发: V: HTTP 403 {'error': 'rejected', 'message': …}"."""
    from node.relay_forward import _refused_words

    words = _refused_words("360802-T01-06", 403, {"error": "rejected", "message": "unknown_key: 签名密钥不受信任"})
    assert words.startswith("下辖村 360802-T01-06 的批次被区局拒收（HTTP 403）：unknown_key: 签名密钥不受信任")
    assert "{" not in words and "不会丢失" in words
    assert "区局没有说明原因" in _refused_words("360802-T01-06", 413, None)
