"""Under --json, a command that fails still prints exactly one JSON document, with `error` (CONTRACT.md),
`code` and `reason`, and its exit code is the contract's (issue 14 item 13)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import SANJI, _env


def sanji(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SANJI), *map(str, args)], capture_output=True, text=True, timeout=120, env=_env(), check=False
    )


@pytest.mark.parametrize(
    ("args", "exit_code", "code"),
    [
        (("node", "status", "{tmp}/nowhere", "--json"), 2, "not_a_station"),
        (("hub", "status", "{tmp}/nowhere", "--json"), 2, "not_a_hub"),
        (("node", "accept", "{tmp}/nowhere", "--no-such-flag", "--json"), 2, "usage"),
        (("hub", "transition", "{tmp}/nowhere", "--json"), 2, "usage"),  # a required argument missing
    ],
)
def test_a_failing_command_prints_one_json_document(
    tmp_path: Path, args: tuple[str, ...], exit_code: int, code: str
) -> None:
    run = sanji(*(a.format(tmp=tmp_path) for a in args))
    assert run.returncode == exit_code, run.stderr
    doc = json.loads(run.stdout)  # exactly one document: json.loads refuses anything after it
    assert doc["error"] == code and doc["code"] == code
    assert isinstance(doc["reason"], str) and doc["reason"]
    assert doc["reason"] in run.stderr or code == "usage", "stderr keeps its one readable line"


def test_without_json_a_failure_prints_nothing_on_stdout(tmp_path: Path) -> None:
    run = sanji("node", "status", tmp_path / "nowhere")
    assert run.returncode == 2 and run.stdout == "" and "这里没有站点" in run.stderr
