"""An administrator's reset of a colleague's password reaches the hub through a real sync (issue 16),
on SQLite and on PostgreSQL, with real processes: `sanji hub add-staff` makes an administrator and a
colleague, a sync brings them down, `sanji node passwd --staff ADMIN --user COLLEAGUE` (the
administrator's password, then the colleague's new one, on stdin) resets the colleague at the
station, and the next sync carries the new scrypt hash up, so the hub's account holds it and its echo
leaves the colleague signing in with it. A colleague who is not an administrator is refused; the hub
never holds the password itself.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sync.staff_password import check_password

from .conftest import Hub, Node
from .processes import run_sanji
from .staff_reads import hub_hash, signs_in

pytestmark = pytest.mark.usefixtures("hub_backend")  # the hub on SQLite and on PostgreSQL

WANG = "wang-管理员口令-2026"
LISI = "lisi-第一个口令-2026"
NEW = "lisi-管理员重设-2027"


def add_staff(hub: Hub, station: str, user: str, role: str, password: str) -> None:
    args = ("hub", "add-staff", hub.dir, "--station", station, "--user", user, "--name", f"名{user}", "--role", role)
    res = run_sanji(*args, stdin=password)
    assert res.code == 0, res.stderr


def test_the_reset_travels_up_in_the_next_sync(new_village: Callable[[], Node], district_hub: Hub) -> None:
    v = new_village()
    add_staff(district_hub, v.code, "wang", "admin", WANG)
    add_staff(district_hub, v.code, "lisi", "staff", LISI)
    assert v.sync().code == 0
    assert signs_in(v, "wang", WANG) == "ok" and signs_in(v, "lisi", LISI) == "ok"

    res = run_sanji("node", "passwd", v.dir, "--staff", "lisi", "--user", "wang", stdin=f"{LISI}\n{NEW}\n")
    assert res.code == 2 and res.data["error"] == "not_admin", "a colleague who is not an administrator"
    res = run_sanji("node", "passwd", v.dir, "--staff", "wang", "--user", "lisi", stdin=f"{WANG}\n{NEW}\n")
    assert res.code == 0, res.stderr
    assert res.data == {"station": v.code, "user": "lisi", "by": "wang"}
    assert signs_in(v, "lisi", LISI) == "wrong_password", "the old password is retired at once"
    assert check_password(LISI, hub_hash(district_hub, v.code, "lisi")), "not synced yet"

    assert v.sync().code == 0
    assert check_password(NEW, hub_hash(district_hub, v.code, "lisi"))
    assert NEW.encode() not in district_hub.stored_bytes(), "the hub keeps the hash, never the password"
    assert v.sync().code == 0  # the echo
    assert signs_in(v, "lisi", NEW) == "ok", "the colleague signs in with the new password, key and all"
    assert check_password(WANG, hub_hash(district_hub, v.code, "wang")), "the administrator's own is untouched"
