"""The demo's closing hints name a command the user can actually type (issue 14 item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sanji.demo import command_name

ROOT = Path(__file__).resolve().parents[1]
VENV_SANJI = Path(sys.executable).with_name("sanji")


def test_without_the_venv_on_path_the_hint_is_the_scripts_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(ROOT)
    name = command_name()
    assert name != "sanji"
    # What the hint says runs, from this folder, as typed.
    run = subprocess.run(f"{name} --version", shell=True, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0 and run.stdout.startswith("sanji "), run.stdout + run.stderr


def test_with_the_venv_activated_the_hint_is_plain_sanji(monkeypatch: pytest.MonkeyPatch) -> None:
    assert VENV_SANJI.exists(), "the console script is installed beside this Python"
    monkeypatch.setenv("PATH", f"{VENV_SANJI.parent}{os.pathsep}/usr/bin:/bin")
    assert command_name() == "sanji"
