"""The author inside a change, end to end with real `sanji` processes (issue 16): a USB-only village made
with its first administrator at `node init --admin`, an application accepted and moved with
`--staff`, carried to the hub on a stick, and `hub show` naming the 经办人 of each step. Applicants are
generated (tests.applicants)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.show_text import render
from tests.applicants import People, accept_args
from tests.e2e.conftest import TOWNSHIP, Hub
from tests.e2e.processes import ok, run_sanji

ITEM = "360802-0001"  # 城乡居民基本养老保险参保登记: immediate, materials 居民身份证 and 户口簿
PASSWORD = "wang-wu-password"

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)


def test_hub_show_names_the_staff_member_of_each_change(hub: Hub, tmp_path: Path) -> None:
    hub.enroll(TOWNSHIP, tier="township")
    carried = tmp_path / "carry" / "village.sje"
    carried.parent.mkdir()
    token = hub.enroll(f"{TOWNSHIP}-61", tier="village", parent=TOWNSHIP, out=carried)
    village = tmp_path / "village"
    # A password too short is refused before anything is made; the folder stays free for a retry.
    short = run_sanji(
        "node", "init", village, "--enrollment", carried, "--token", token, "--admin", "wang", "--admin-name", "王五",
        stdin="short\n",
    )  # fmt: skip
    assert short.code == 2 and short.data["error"] == "password_too_short"
    made = run_sanji(
        "node", "init", village, "--enrollment", carried, "--token", token, "--admin", "wang", "--admin-name", "王五",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert made.code == 0, made.stderr
    assert made.data["admin"] == "wang" and made.data["station"] == f"{TOWNSHIP}-61"

    accept = accept_args(village, People(16), ITEM)
    refused = run_sanji(*accept)
    assert refused.code == 2 and refused.data["error"] == "staff_required"
    accepted = run_sanji(*accept, "--staff", "wang", stdin=PASSWORD + "\n")
    assert accepted.code == 0, accepted.stderr
    number = accepted.data["number"]
    moved = run_sanji(
        "node", "transition", village, number, "--to", "completed", "--staff", "wang", stdin=PASSWORD + "\n"
    )
    assert moved.code == 0, moved.stderr

    stick = tmp_path / "stick"
    ok("node", "export", village, "--out", stick)
    ok("hub", "import", hub.dir, stick)
    shown = ok("hub", "show", hub.dir, number)
    assert [e["author"] for e in shown["events"]] == ["wang", "wang"]
    assert "经办人 wang" in render(shown)  # what `hub show` prints without --json
