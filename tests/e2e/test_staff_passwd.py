"""A password changed at the station reaches the hub, by network or by stick (issue 16), with real
processes: `sanji hub add-staff`, a sync, `sanji node passwd` (current and new password on stdin), and
the next sync carries the new scrypt hash up, so the hub's later word on the account (a disable) does
not bring the old password back; the hub never holds the password itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sync.staff_password import check_password

from .conftest import Hub, Node
from .processes import ok, run_sanji
from .staff_reads import hub_hash, signs_in

FIRST = "lisi-第一个口令-2026"
SECOND = "lisi-第二个口令-2027"


def with_stdin(*args: object, stdin: str) -> None:
    res = run_sanji(*args, stdin=stdin)
    assert res.code == 0, res.stderr


def passwd(node: Node, user: str, old: str, new: str) -> None:
    res = run_sanji("node", "passwd", node.dir, "--staff", user, stdin=f"{old}\n{new}\n")
    assert res.code == 0, res.stderr
    assert res.data == {"station": node.code, "user": user}


def test_over_the_network(new_village: Callable[[], Node], district_hub: Hub) -> None:
    v = new_village()
    with_stdin(
        "hub", "add-staff", district_hub.dir, "--station", v.code, "--user", "lisi", "--name", "李四", stdin=FIRST
    )
    assert v.sync().code == 0
    passwd(v, "lisi", FIRST, SECOND)
    res = run_sanji("node", "passwd", v.dir, "--staff", "lisi", stdin=f"{FIRST}\n{SECOND}-x\n")
    assert res.code == 2 and res.data["error"] == "wrong_password", "the old password is retired at once"
    assert check_password(FIRST, hub_hash(district_hub, v.code, "lisi")), "not synced yet"

    assert v.sync().code == 0
    assert check_password(SECOND, hub_hash(district_hub, v.code, "lisi"))
    hub_files = b"".join(p.read_bytes() for p in district_hub.dir.glob("hub.db*"))
    assert SECOND.encode() not in hub_files, "the hub keeps the hash, never the password"

    ok("hub", "disable-staff", district_hub.dir, "--station", v.code, "--user", "lisi")
    with_stdin(
        "hub", "enable-staff", district_hub.dir, "--station", v.code, "--user", "lisi", stdin="lisi-区局重设-2027"
    )
    assert v.sync().code == 0
    assert signs_in(v, "lisi", SECOND) == "wrong_password", "the hub's later reset wins"
    assert check_password("lisi-区局重设-2027", hub_hash(district_hub, v.code, "lisi"))


def test_by_stick(new_village: Callable[[], Node], district_hub: Hub, tmp_path: Path) -> None:
    v = new_village()
    with_stdin(
        "hub", "add-staff", district_hub.dir, "--station", v.code, "--user", "lisi", "--name", "李四", stdin=FIRST
    )
    down = tmp_path / "down"
    ok("hub", "export", district_hub.dir, "--station", v.code, "--out", down)
    assert run_sanji("node", "import", v.dir, down).code == 0
    passwd(v, "lisi", FIRST, SECOND)
    up = tmp_path / "up"
    ok("node", "export", v.dir, "--out", up)
    ok("hub", "import", district_hub.dir, up)
    assert check_password(SECOND, hub_hash(district_hub, v.code, "lisi"))

    ok("hub", "disable-staff", district_hub.dir, "--station", v.code, "--user", "lisi")
    with_stdin("hub", "enable-staff", district_hub.dir, "--station", v.code, "--user", "lisi", stdin=SECOND)
    again = tmp_path / "down-2"
    ok("hub", "export", district_hub.dir, "--station", v.code, "--out", again)
    assert run_sanji("node", "import", v.dir, again).code == 0
    assert signs_in(v, "lisi", SECOND) in ("ok", "no_data_key"), "the password is the one the hub holds"
    # The first stick, found again, is older: it puts the first password back nowhere.
    assert run_sanji("node", "import", v.dir, down).code == 0
    assert signs_in(v, "lisi", FIRST) == "wrong_password"
