"""Under --json, a command that fails still prints exactly one JSON document, with `error` (CONTRACT.md),
`code` and `reason`, and its exit code is the contract's (issue 14 item 13)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from .conftest import Hub
from .processes import SANJI, _env
from .processes import ok as run_ok


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


# -- a hub's own refusals, on either backend ----------------------------------------------------------


@pytest.mark.usefixtures("hub_backend")
def test_a_hubs_refusal_is_one_json_document_on_either_backend(hub: Hub, hub_backend: str, tmp_path: Path) -> None:
    run = sanji("hub", "transition", hub.dir, "360802-NO-SUCH-NUMBER", "--to", "completed", "--json")
    assert run.returncode == 2, run.stderr
    doc = json.loads(run.stdout)
    assert doc["error"] == doc["code"] and doc["reason"] in run.stderr
    assert "360802-NO-SUCH-NUMBER" in doc["reason"] and "sanji hub applications" in doc["reason"], "what to do next"
    backup = sanji("hub", "backup", hub.dir, "--out", tmp_path / "hub-backup.db", "--json")
    if hub_backend == "sqlite":
        assert backup.returncode == 0 and json.loads(backup.stdout)["bytes"] > 0, backup.stderr
        return
    # On PostgreSQL the file copy is refused by design, naming the tool that backs the database up.
    assert backup.returncode == 2, backup.stderr
    doc = json.loads(backup.stdout)
    assert doc["error"] == "store_is_postgresql" and "pg_dump" in doc["reason"] and str(hub.dir) in doc["reason"]
    assert not (tmp_path / "hub-backup.db").exists()
    restore = sanji("hub", "restore", hub.dir, "--from", tmp_path / "hub-backup.db", "--json")
    assert restore.returncode == 2 and json.loads(restore.stdout)["error"] == "store_is_postgresql"
    assert "pg_restore" in json.loads(restore.stdout)["reason"]


def test_a_hub_whose_database_does_not_answer_says_so_in_one_json_document(tmp_path: Path, pg_dsn: str) -> None:
    """PostgreSQL's own failure: the folder names a database nothing answers for (the server down, a
    firewall): every hub command says so, in Chinese, with what to check, and exits 2."""
    folder = tmp_path / "hub"
    assert run_ok("hub", "init", folder, "--district", "360802", "--database", pg_dsn)["hub_id"] == "360802"
    settings = folder / "hub-database.json"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    settings.write_text(json.dumps({"backend": "postgresql", "dsn": f"postgresql://postgres@127.0.0.1:{dead}/gone"}))
    run = sanji("hub", "status", folder, "--json")
    assert run.returncode == 2, run.stderr
    doc = json.loads(run.stdout)
    assert doc["error"] == "database_unreachable" and "连不上区局的 PostgreSQL 数据库" in doc["reason"]
    assert "Traceback" not in run.stderr
