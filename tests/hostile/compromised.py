"""A real district for the compromised-station tests: a `sanji hub serve` process, stations made with
`sanji node init`, an operator signed in to the dashboard, and the one thing no command does:
writing changes through a station's own write path without the admission check.

The attacker is a station with its real keys and modified software. It opens its own folder in
this process, writes with ``Station.write_unchecked`` (the write path minus ``check_write``) and
then runs a normal `sanji node sync`; everything else is the `sanji` command or HTTP, as operators
and stations use them. Applicants are generated (tests/applicants.py), never real people.
"""

from __future__ import annotations

import html
import http.cookiejar
import os
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from node import commands
from node.station import Station
from protocol.codec import unpack
from replica.ids import CHINA, iso_from_ms, uuid7
from sync.acceptance import due_date
from sync.fold import versions
from sync.model import MATERIAL_PREFIX
from sync.numbering import application_number
from tests.applicants import People, accept_args
from tests.e2e.conftest import TOWNSHIP, Hub, Node, init_online
from tests.e2e.processes import free_loopback_port, ok, run_sanji

ROOT = Path(__file__).resolve().parents[2]
VILLAGE, NEIGHBOUR = f"{TOWNSHIP}-05", f"{TOWNSHIP}-06"
FIELD_A, FIELD_B = "360802-F01", "360802-F02"
INSPECTED = "360802-0004"  # 最低生活保障申请: promised, decided by the district, inspection required
DISTRICT_ONLY = "360802-0042"  # 企业设立登记: accepted_at lists the district alone
OPERATOR, PASSWORD = "wangfang", "hostile-test-operator-pw"


@dataclass
class District:
    hub: Hub
    village: Node  # the compromised one, unless a test says otherwise
    neighbour: Node
    field_a: Node
    field_b: Node
    people: People

    def accept(self, node: Node, item: str = INSPECTED) -> dict[str, Any]:
        doc = ok(*accept_args(node.dir, self.people, item))
        assert doc["status"] == "accepted"
        return dict(doc)

    def sync(self, *nodes: Node) -> list[dict[str, Any]]:
        out = []
        for node in nodes:
            res = node.sync()
            assert res.code == 0, f"sync of {node.code} exited {res.code}: {res.stderr}"
            out.append(res.data)
        return out

    def show(self, number: str) -> dict[str, Any]:
        return dict(ok("hub", "show", self.hub.dir, number))

    def transition(self, number: str, to: str) -> dict[str, Any]:
        # These files are about the workflow, not inspection: an approval goes ahead on an override.
        override = ["--override-reason", "测试：不涉及现场踏勘"] if to == "approved" else []
        doc = ok("hub", "transition", self.hub.dir, number, "--to", to, *override)
        assert doc["status"] == to
        assert self.show(number)["status"] == to, "hub transition exited 0 but the status did not change"
        return dict(doc)


@contextmanager
def _code_under_test() -> Iterator[None]:
    """`sanji` subprocesses import this checkout's packages, not whichever tree the venv was installed
    from (an editable install points at one folder; PYTHONPATH comes first on sys.path)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
        yield


def build_district(root: Path, seed: int) -> Iterator[District]:
    """`hub init`, the township, two villages, two field devices and an operator; the hub serving
    (without --allow-unsealed-for-tests) until the generator is closed."""
    with _code_under_test():
        ok("hub", "init", root / "hub", "--district", "360802")
        hub = Hub(root / "hub", free_loopback_port())
        try:
            hub.enroll(TOWNSHIP, tier="township", name="测试镇便民服务中心")
            hub.start()
            village = init_online(hub, root / "village", VILLAGE)
            neighbour = init_online(hub, root / "neighbour", NEIGHBOUR)
            field_a = init_online(hub, root / "field-a", FIELD_A, tier="field", parent="")
            field_b = init_online(hub, root / "field-b", FIELD_B, tier="field", parent="")
            res = run_sanji("hub", "add-operator", hub.dir, "--user", OPERATOR, stdin=PASSWORD + "\n")
            assert res.code == 0, res.stderr
            yield District(hub, village, neighbour, field_a, field_b, People(seed))
        finally:
            hub.stop_all()


# -- the compromised station's own write path ----------------------------------------------------------


@contextmanager
def compromised(node: Node) -> Iterator[Station]:
    """The station's folder opened in this process, one transaction around the block: what modified
    software with the station's real keys would do. Closed before any `sanji` command touches it."""
    st = Station(node.dir)
    try:
        with st.transaction():
            yield st
    finally:
        st.close()


def app_id(st: Station, number: str) -> str:
    return commands.find(st, number)


def seen(st: Station, entity: str, rec_id: str) -> dict[str, int]:
    """The versions the station holds of a record: a forged change claims to have seen exactly these."""
    return dict(versions(st.records.load(entity, rec_id)))


def next_number(st: Station) -> str:
    """The station's next own number, taken as the accept command takes it."""
    counter = st.meta.int("counter") + 1
    st.meta.set("counter", counter)
    return application_number(st.code, today(st), st.meta.int("epoch", 1), counter)


def today(st: Station) -> date:
    """The station's day in district time, as its numbers and due dates count it."""
    return datetime.fromtimestamp(st.clock() / 1000, tz=CHINA).date()


def new_application(st: Station, people: People, item: str, /, **override: object) -> tuple[str, dict[str, object]]:
    """A new application in exactly the shape the accept command writes (every required material
    submitted, due dates from the station's own catalogue), then ``override`` on top: the forgery."""
    cat = st.catalogue()
    entry = cat.catalogue.items[item]
    day, cal = today(st), cat.catalogue.calendar
    fields: dict[str, object] = {
        "station": st.code,
        "item": item,
        "catalogue_version": cat.version,
        "kind": entry.kind,
        "applicant_name": people.name(),
        "applicant_id": people.id_number(),
        "applicant_phone": people.phone(),
        "address": people.address(),
        "accepted_at": iso_from_ms(st.clock()),
        "due_date": due_date(entry, day, cal).isoformat(),
        "status": "accepted",
    }
    for m in entry.materials:  # nothing deferred (容缺): every required material is submitted
        if m.required:
            fields[MATERIAL_PREFIX + m.name] = ["submitted", ""]
    fields["number"] = override.pop("number", None) or next_number(st)
    fields.update(override)
    return uuid7(None), fields


# -- what the hub holds ------------------------------------------------------------------------------


def hub_rows(hub: Hub, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """A read-only look at hub.db while the hub serves (WAL lets a reader in beside the writer)."""
    conn = sqlite3.connect(f"file:{hub.db}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql, args).fetchall())
    finally:
        conn.close()


@dataclass(frozen=True)
class Held:
    id: int
    origin: str
    seq: int
    sender: str
    code: str
    reason: str
    state: str
    note: str


def held(hub: Hub, **where: object) -> list[Held]:
    """Quarantine rows matching ``where`` (column=value), oldest first."""
    cond = " AND ".join(f"{k}=?" for k in where) or "1=1"
    rows = hub_rows(
        hub,
        f"SELECT id, origin, seq, sender, code, reason, state, note FROM quarantine WHERE {cond} ORDER BY id",
        tuple(where.values()),
    )
    return [Held(*r) for r in rows]


def held_for(hub: Hub, rec_id: str) -> list[Held]:
    """Quarantine rows whose held change names record ``rec_id`` (the raw change is msgpack; the id is
    stored in it as a plain string)."""
    return [h for h in held(hub) if rec_id.encode() in _raw(hub, h.id)]


def _raw(hub: Hub, qid: int) -> bytes:
    return bytes(hub_rows(hub, "SELECT raw FROM quarantine WHERE id=?", (qid,))[0][0])


# -- the dashboard -----------------------------------------------------------------------------------


class Dashboard:
    """An operator's browser without the browser: a cookie jar, the login form, CSRF fields."""

    def __init__(self, url: str) -> None:
        self.url = url
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar)
        )

    def request(self, path: str, form: Mapping[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.url + path, data=body, method="POST" if form is not None else "GET")
        try:
            with self.opener.open(req, timeout=15) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def get(self, path: str) -> str:
        status, text = self.request(path)
        assert status == 200, f"GET {path}: {status}"
        return html.unescape(text)

    def post(self, path: str, form: Mapping[str, str], *, page: str) -> tuple[int, str]:
        """Submit a form found on ``page`` with that page's CSRF token (redirects are followed)."""
        status, text = self.request(page)
        assert status == 200, f"GET {page}: {status}"
        status, text = self.request(path, {**form, "csrf": csrf_of(text)})
        return status, html.unescape(text)

    def login(self, user: str = OPERATOR, password: str = PASSWORD) -> None:
        status, text = self.post("/login", {"user": user, "password": password, "next": "/"}, page="/login")
        assert status == 200 and "退出" in text, f"login as {user} failed: {status}"


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "no CSRF field on the page"
    return m.group(1)


def section(page: str, qid: int) -> str:
    """One quarantine row's card on the dashboard's quarantine page."""
    m = re.search(rf'<section class="card" id="q{qid}".*?</section>', page, re.S)
    assert m, f"quarantine row {qid} is not on the page"
    return m.group(0)


def forged_count(
    hub: Hub, origin: str, predicate: Callable[[dict[str, object]], bool], rids: Collection[str] | None = None
) -> int:
    """How many changes the hub applied from ``origin`` (to the records ``rids``, if given) whose
    fields satisfy ``predicate``."""
    rows = hub_rows(hub, "SELECT rid, fields FROM changes WHERE origin=?", (origin,))
    wanted = [unpack(bytes(f)) for rid, f in rows if rids is None or rid in rids]
    return sum(1 for f in wanted if isinstance(f, dict) and predicate(f))


def upcoming_number(node: Node) -> str:
    """The number a station's next acceptance will take: stations count openly, so anyone can guess it."""
    st = Station(node.dir)
    try:
        return application_number(st.code, today(st), st.meta.int("epoch", 1), st.meta.int("counter") + 1)
    finally:
        st.close()


def station_values(node: Node, entity: str, rec_id: str) -> dict[str, object]:
    """A record as a station holds it (and its screens show it)."""
    st = Station(node.dir)
    try:
        return dict(st.records.values(entity, rec_id))
    finally:
        st.close()
