"""`make demo` is half of the README's Quick start: the story must run to its end on a bare machine."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_tells_the_whole_story_and_leaves_a_login(tmp_path: Path) -> None:
    sanji = Path(sys.executable).parent / "sanji"
    out = subprocess.run(
        [str(sanji), "demo", "--dir", str(tmp_path / "district"), "--once", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for line in (
        "连不上区局（退出码 3），没有数据丢失",
        "每件恰好一份",
        "上传 0）",
        "冲突：",
        "规则：办件状态：先按办理流程的阶段",
        "已送达区行政审批局",
        "区局缺少的照片：0 张",
        "用户名 demo，密码 ",
    ):
        assert line in text, f"the demo no longer says {line!r}"
    # A second run in the same folder starts over instead of refusing or mixing two districts.
    again = subprocess.run(
        [str(sanji), "demo", "--dir", str(tmp_path / "district"), "--once", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "data.txt").write_text("keep me", encoding="utf-8")
    sanji = Path(sys.executable).parent / "sanji"
    out = subprocess.run(
        [str(sanji), "demo", "--dir", str(tmp_path / "precious"), "--once"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "不是演示文件夹" in out.stderr
    assert (tmp_path / "precious" / "data.txt").read_text(encoding="utf-8") == "keep me"
