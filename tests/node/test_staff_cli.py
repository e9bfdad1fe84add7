"""`--staff USER` at the station's commands (issue 16): the change carries who made it once a station
has accounts, every way a sign-in can fail is a clear refusal that writes nothing, a station without
accounts works as before, and `node add-admin` makes the first administrator. Applicants are generated
(tests.conftest.People); the accounts use a cheap scrypt cost (tests/node/staff_helpers.py)."""

from __future__ import annotations

import pytest

from hub import operations
from node import staff_accounts
from node.station import Station
from protocol.codec import unpack
from sync.change import Change, change_from_wire
from tests.conftest import World
from tests.node.staff_helpers import ADMIN_PASSWORD, STAFF_PASSWORD, T0, run, sign_in, with_staff

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"
ITEM = "360802-0009"  # 高龄津贴申领: promised, the bank card may be deferred
CARD = "银行卡"


def accept_args(world: World, st: Station, *extra: str) -> list[str]:
    p = world.people.applicant()
    args = ["node", "accept", str(st.folder), "--item", ITEM, "--name", p["name"], "--id-number", p["id_number"]]
    args += ["--phone", p["phone"], "--address", "测试路1号", "--defer", CARD]
    for m in world.application(ITEM, st=st, deferred=[CARD]).submitted:
        args += ["--material", m]
    return [*args, *extra]


def authors(st: Station) -> list[str]:
    return [str(r[0]) for r in st.conn.execute("SELECT author FROM changes WHERE origin=? ORDER BY seq", (st.code,))]


def test_a_station_without_accounts_works_as_before_and_its_changes_name_no_author(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, *accept_args(world, village))
    assert code == 0 and out["number"]
    assert authors(village) == [""]
    world.push(village)
    held = world.hub.records.history(str(out["id"]))
    assert [h["author"] for h in held] == [""]


def test_once_there_are_accounts_a_change_needs_a_named_signed_in_author(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    with_staff(village.db, VILLAGE)
    seq = village.meta.int("seq")
    code, out = run(capsys, *accept_args(world, village))
    assert code == 2 and out["error"] == "staff_required"
    assert "--staff" in str(out["reason"]) and "标准输入" in str(out["reason"])
    assert village.meta.int("seq") == seq  # nothing written

    code, out = run(capsys, *accept_args(world, village, "--staff", "zhangsan"), stdin=STAFF_PASSWORD + "\n")
    assert code == 0, out
    number = str(out["number"])
    assert authors(village) == ["zhangsan"]

    code, out = run(
        capsys, "node", "supplement", str(village.folder), number, "--material", CARD, "--staff", "admin",
        stdin=ADMIN_PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, out
    code, out = run(
        capsys, "node", "transition", str(village.folder), number, "--to", "withdrawn", "--staff", "zhangsan",
        stdin=STAFF_PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, out
    assert authors(village) == ["zhangsan", "admin", "zhangsan"]

    # The author is inside the signed batch, and the hub keeps it in its log and shows it.
    world.push(village)
    shown = operations.show(world.hub, number, reveal=False)
    assert [e["author"] for e in shown["events"]] == ["zhangsan", "admin", "zhangsan"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("setup", "password", "code_expected", "words"),
    [
        ("none", "wrong-password-9", "wrong_password", "密码不正确"),
        ("disabled", STAFF_PASSWORD, "disabled", "已停用"),
        ("locked", STAFF_PASSWORD, "locked_out", "暂停登录"),
        ("unknown", STAFF_PASSWORD, "unknown_user", "没有用户名为"),
        ("empty", "", "password_required", "标准输入"),
    ],
)
def test_every_failed_sign_in_is_a_clear_refusal_that_writes_nothing(
    world: World,
    village: Station,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    password: str,
    code_expected: str,
    words: str,
) -> None:
    admin = with_staff(village.db, VILLAGE)
    user = "lisi" if setup == "unknown" else "zhangsan"
    if setup == "disabled":
        staff_accounts.disable(village.db, station=VILLAGE, user="zhangsan", by=admin, now_ms=T0)
    if setup == "locked":
        for _ in range(5):
            with pytest.raises(staff_accounts.Refused):
                sign_in(village.db, "zhangsan", "not-the-password", now_ms=village.clock())
    seq = village.meta.int("seq")
    code, out = run(capsys, *accept_args(world, village, "--staff", user), stdin=password + "\n")
    assert code == 2
    assert out["error"] == code_expected and words in str(out["reason"])
    assert village.meta.int("seq") == seq
    assert village.conn.execute("SELECT COUNT(*) FROM applications").fetchone()[0] == 0


def test_a_reveal_names_the_signed_in_person_in_the_audit(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    world.accept(village, ITEM, deferred=[CARD])
    with_staff(village.db, VILLAGE)
    code, out = run(capsys, "node", "applications", str(village.folder), "--reveal")
    assert code == 2 and out["error"] == "staff_required"
    code, _ = run(capsys, "node", "applications", str(village.folder))  # masked: nobody needed
    assert code == 0
    code, out = run(
        capsys, "node", "applications", str(village.folder), "--reveal", "--staff", "zhangsan",
        stdin=STAFF_PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0
    rows = village.conn.execute("SELECT staff, action FROM ui_audit").fetchall()
    assert rows == [("zhangsan", "cli_reveal")]


def test_add_admin_makes_the_first_administrator_once(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(village.folder)
    code, out = run(capsys, "node", "add-admin", folder, "--user", "wang", "--name", "王五", stdin="short\n")
    assert code == 2 and out["error"] == "password_too_short"
    code, out = run(capsys, "node", "add-admin", folder, "--user", "Wang Wu", "--name", "王五", stdin="long-enough-1\n")
    assert code == 2 and out["error"] == "bad_user"
    code, out = run(capsys, "node", "add-admin", folder, "--user", "wang", "--name", "王五", stdin="long-enough-1\n")
    assert code == 0 and out == {"station": VILLAGE, "user": "wang", "name": "王五"}
    code, out = run(capsys, "node", "add-admin", folder, "--user", "zhao", "--name", "赵六", stdin="long-enough-2\n")
    assert code == 2 and out["error"] == "staff_exists"
    # The new administrator signs changes from now on.
    code, out = run(capsys, *accept_args(world, village, "--staff", "wang"), stdin="long-enough-1\n")
    assert code == 0 and authors(village) == ["wang"]


def test_the_outbox_frame_carries_the_author_as_the_ninth_element(world: World, village: Station) -> None:
    from node import commands, uplink

    with_staff(village.db, VILLAGE)
    # A station with a data key seals personal values as it writes: the command's signed-in session.
    village.session = sign_in(village.db, "zhangsan", STAFF_PASSWORD, now_ms=village.clock(), code=VILLAGE)
    out = commands.accept(village, world.application(ITEM, st=village, deferred=[CARD]), author="zhangsan")
    uplink.build_outbox(village)
    rows = village.conn.execute("SELECT seq, hlc, entity, rid, fields, base, author FROM changes").fetchall()
    wire = [VILLAGE, 1, *rows[0][:4], unpack(rows[0][4]), unpack(rows[0][5]), rows[0][6]]
    personal = ("applicant_name", "applicant_id", "applicant_phone", "address")
    plain = {k: (v if k not in personal else "x") for k, v in dict(wire[6]).items()}  # type: ignore[call-overload]
    assert change_from_wire([*wire[:6], plain, *wire[7:]]).author == "zhangsan"
    world.push(village)
    assert [h["author"] for h in world.hub.records.history(str(out["id"]))] == ["zhangsan"]
    assert world.hub.store.conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] == 0


def test_station_and_hub_refuse_a_malformed_author_alike(world: World, village: Station) -> None:
    from hub.admission import Gate
    from hub.feed import Lookup
    from node import commands
    from replica.errors import Refused

    out = world.accept(village, ITEM, deferred=[CARD])
    world.push(village)
    app_id = str(out["id"])
    seq = village.meta.int("seq")
    with pytest.raises(Refused) as exc, village.transaction():
        village.write("application", app_id, {"note": "补充"}, {}, author="Zhang San")
    assert exc.value.code == "bad_author" and village.meta.int("seq") == seq
    # The hub asks the same question of the same change (a station running modified software).
    with village.transaction():
        change = village.write_unchecked("application", app_id, {"note": "补充"}, {})
    forged = Change(**{**change.__dict__, "author": "Zhang San"})
    gate = Gate(world.hub, Lookup(world.hub))
    verdict = gate.ask(forged, gate.actor(VILLAGE))
    assert verdict.code == "bad_author" and verdict.reason in str(exc.value)
    assert commands.find(village, str(out["number"])) == app_id
