"""Every command, option and argument staff can ask `--help` about is described in Chinese, and the
statuses `--to` and `--status` take are listed with their words (issue 14, item 12)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from sanji.cli import build_parser
from sync.workflow import STATUS_LABELS

CJK = re.compile(r"[\u4e00-\u9fff]")


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_command_and_option_is_described_in_chinese() -> None:
    undescribed = []
    commands = list(_commands(build_parser()))
    assert len(commands) > 40  # hub, node and demo with all their commands
    for path, parser in commands:
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._SubParsersAction):
                undescribed += [
                    f"{' '.join(path)} {choice.dest}"
                    for choice in action._choices_actions
                    if not CJK.search(choice.help or "")
                ]
                continue
            if not CJK.search(action.help or ""):
                undescribed.append(f"sanji {' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert undescribed == []


def test_to_and_status_list_every_status_with_its_word() -> None:
    parsers = dict(_commands(build_parser()))
    for path, dest in [
        (("hub", "transition"), "to"),
        (("node", "transition"), "to"),
        (("hub", "applications"), "status"),
    ]:
        (action,) = [a for a in parsers[path]._actions if a.dest == dest]
        for status, word in STATUS_LABELS.items():
            assert f"{status.value}（{word}）" in (action.help or "")


def test_argparse_itself_speaks_chinese() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "sanji.cli", "node", "accept", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert shown.startswith("用法：") and "显示本帮助后退出" in shown and "options:" not in shown
    wrong = subprocess.run(
        [sys.executable, "-m", "sanji.cli", "hub", "transition", "hub-folder"], capture_output=True, text=True
    )
    assert wrong.returncode == 2
    assert "缺少必填参数" in wrong.stderr and "the following arguments" not in wrong.stderr
