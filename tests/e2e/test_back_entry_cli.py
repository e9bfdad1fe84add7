"""`sanji node accept --from FILE` (补录): the README's example line is accepted as written (with a
generated ID number and phone in place of its "…"), and a file of which nothing is accepted exits 2
(issue 14 item 8)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.applicants import People

from .conftest import Hub, Node
from .processes import ok, run_sanji

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)


def readme_back_entry_line() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Back-entry (补录).**") :]
    block = re.search(r"```\n(.*?)\n```", section, re.S)
    assert block, "the README shows a back-entry line"
    return block.group(1).strip()


def test_the_readme_line_is_accepted_as_written(
    new_village: Callable[[], Node], district_hub: Hub, tmp_path: Path, people: People
) -> None:
    v = new_village()
    line = readme_back_entry_line()
    assert line.count("…") == 2, "the README line leaves exactly the ID number and the phone to fill in"
    line = line.replace("…", people.id_number(), 1).replace("…", people.phone(), 1)
    json.loads(line)
    (tmp_path / "paper.jsonl").write_text(line + "\n", encoding="utf-8")
    res = run_sanji("node", "accept", v.dir, "--from", tmp_path / "paper.jsonl")
    assert res.code == 0, res.stderr
    assert res.data == {"accepted": 1, "refused": []}
    # And the paper record reaches the hub like any other application.
    synced = run_sanji("node", "sync", v.dir)
    assert synced.code == 0 and synced.data["pending"] == 0, synced.stderr
    assert district_hub.numbers(v.code) == [a["number"] for a in ok("node", "applications", v.dir)["applications"]]


def test_a_file_with_nothing_accepted_exits_2_with_each_lines_reason(
    new_village: Callable[[], Node], tmp_path: Path
) -> None:
    v = new_village()
    (tmp_path / "bad.jsonl").write_text('{"item": "360802-0001"}\nnot json\n', encoding="utf-8")
    res = run_sanji("node", "accept", v.dir, "--from", tmp_path / "bad.jsonl")
    assert res.code == 2
    assert res.data["accepted"] == 0 and [r["line"] for r in res.data["refused"]] == [1, 2]
