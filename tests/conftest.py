"""Shared fixtures for the hub, node and replica tests.

Everything here is built for real in ``tmp_path``: a hub made with ``Hub.create``, stations made with
``Station(..., create=True)`` and enrolled through ``hub.enrolment.register`` / ``redeem`` and the
node's own ``_pin``. Time is a :class:`FakeClock` both sides share unless a test gives a station its
own. Applicants are generated: ID numbers are made here with the GB 11643 check digit computed
independently of ``sync.identity``, names are obviously synthetic, phones are sequential.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from hub import enrolment
from hub.feed import feed_page
from hub.ingest import FrameAck, ingest_frame
from hub.service import Hub
from node import commands, uplink
from node.enrolment import _pin
from node.station import Station
from protocol.document import sign_document
from replica.ids import CHINA
from tests.applicants import id_check_char

# The throwaway PostgreSQL cluster and a database per test (issue 15), for any test that asks.
from tests.pg_fixtures import pg_cluster, pg_dsn  # noqa: F401

HUB_ID = "360802"
# Monday 2 March 2026, 09:00 in Jingdezhen: a working day inside the sample catalogue's calendar.
START_MS = int(datetime(2026, 3, 2, 9, 0, tzinfo=CHINA).timestamp() * 1000)
MINUTE_MS = 60_000


def check_char(first17: str) -> str:
    """GB 11643-1999 check character, computed here so tests do not trust the code under test."""
    return id_check_char(first17)


def make_id(serial: int, *, born: date = date(1985, 6, 15), region: str = HUB_ID) -> str:
    first17 = f"{region}{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + check_char(first17)


def wrong_check_char(id_number: str) -> str:
    """The same ID number with a check character that is certainly wrong."""
    right = id_number[-1]
    return id_number[:-1] + next(c for c in "0123456789X" if c != right)


class FakeClock:
    """Wall time in ms that moves only when a test says so."""

    def __init__(self, ms: int = START_MS) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


class SkewedClock:
    """Another clock plus a fixed offset: a station whose clock is wrong by ``offset_ms``."""

    def __init__(self, base: FakeClock, offset_ms: int) -> None:
        self.base = base
        self.offset_ms = offset_ms

    def __call__(self) -> int:
        return self.base() + self.offset_ms


class People:
    """Synthetic applicants: never real people. Deterministic per test."""

    def __init__(self, seed: int = 11643) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def applicant(self) -> dict[str, str]:
        self.n += 1
        born = date(1950, 1, 1) + timedelta(days=self.rng.randrange(0, 365 * 50))
        return {
            "name": f"测试申请人{self.n:04d}",
            "id_number": make_id(self.n, born=born),
            "phone": f"139{self.n:08d}",
        }


def materials(st: Station, item_code: str, *, deferred: Sequence[str] = ()) -> list[str]:
    """Every required material of an item, minus the ones to record as deferred."""
    item = st.catalogue().catalogue.items[item_code]
    return [m.name for m in item.materials if m.required and m.name not in deferred]


class World:
    """A hub and the stations enrolled with it, all in one temporary folder."""

    def __init__(
        self,
        root: Path,
        clock: FakeClock,
        *,
        template: Path | None = None,
        codes: Sequence[str] = (),
        database: str | None = None,
    ) -> None:
        self.root = root
        self.clock = clock
        self.people = People()
        if template is None:
            self.hub = Hub.create(
                root / "hub", district=HUB_ID, name="测试区行政审批局", catalogue=None, clock=clock, database=database
            )
        else:
            shutil.copytree(template, root, dirs_exist_ok=True)
            self.hub = Hub.open(root / "hub", clock=clock)
        self.stations: list[Station] = [Station(root / code, clock=clock) for code in codes]

    def get(self, code: str) -> Station:
        return next(s for s in self.stations if s.code == code)

    def register(self, code: str, tier: str, parent: str = "") -> str:
        return enrolment.register(self.hub, station=code, name=f"{code} 测试站", tier=tier, parent=parent)

    def station(self, code: str, tier: str, parent: str = "", *, clock: object = None) -> Station:
        """Register, make and enrol a station (keys made locally, hub keys pinned from the answer)."""
        token = self.register(code, tier, parent)
        st = Station(self.root / code, clock=clock or self.clock, create=True)  # type: ignore[arg-type]
        answer = enrolment.redeem(self.hub, token=token, sign_pub=st.keys.sign_pub, seal_pub=st.keys.seal_pub)
        _pin(st, answer, token, "", online=True)
        self.stations.append(st)
        return st

    def application(
        self, item: str, *, st: Station, deferred: Sequence[str] = (), **kw: object
    ) -> commands.Application:
        p = self.people.applicant()
        fields: dict[str, object] = {
            "item": item,
            "name": p["name"],
            "id_number": p["id_number"],
            "phone": p["phone"],
            "address": "测试路1号",
            "submitted": materials(st, item, deferred=deferred),
            "deferred": list(deferred),
        }
        fields.update(kw)
        return commands.Application(**fields)  # type: ignore[arg-type]

    def accept(self, st: Station, item: str, *, deferred: Sequence[str] = (), **kw: object) -> dict[str, object]:
        return commands.accept(st, self.application(item, st=st, deferred=deferred, **kw))

    def frames(self, st: Station) -> list[bytes]:
        """Batch everything the station has not batched yet; return every unsettled frame, in order."""
        uplink.build_outbox(st)
        return [frame for _, frame in uplink.unsettled(st)]

    def ingest(self, frames: Sequence[bytes]) -> list[FrameAck]:
        return [ingest_frame(self.hub, f, source="test") for f in frames]

    def push(self, st: Station) -> list[FrameAck]:
        """What one HTTP push does, minus HTTP: ingest every unsettled frame, hand the station the
        hub-signed acknowledgements, which it records in its outbox."""
        acks = self.ingest(self.frames(st))
        answer = sign_document(
            "acks",
            {"acks": [a.to_wire() for a in acks]},
            signer=self.hub.hub_id,
            recipient=st.code,
            signing_key=self.hub.keys.sign,
        )
        uplink.read_acks(st, answer)
        return acks

    def pull(self, st: Station) -> uplink.FeedResult:
        """One feed page from the hub, opened and applied by the station as a real pull would."""
        cat = st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0
        page = feed_page(self.hub, st.code, after=st.meta.int("feed_cursor"), catalogue_version=int(cat))
        return uplink.apply_feed(st, page)

    def close(self) -> None:
        for st in self.stations:
            st.close()
        self.hub.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def people() -> People:
    return People()


Spec = tuple[str, str, str]  # (station code, tier, parent)


class Templates:
    """Hub and station folders built once per session and copied for each test.

    Making a hub or a station runs its migrations with ``synchronous=FULL``, one fsync per statement, which
    dominates the runtime on a busy disk. A test gets a byte-for-byte copy of a folder built exactly as
    ``World`` builds one, opened on the test's own clock.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[tuple[Spec, ...], Path] = {}

    def get(self, specs: tuple[Spec, ...]) -> Path:
        if specs not in self.built:
            folder = self.root / f"t{len(self.built)}"
            w = World(folder, FakeClock())
            for code, tier, parent in specs:
                w.station(code, tier, parent)
            w.close()
            self.built[specs] = folder
        return self.built[specs]


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def make_world(tmp_path: Path, clock: FakeClock, templates: Templates) -> Iterator[Callable[..., World]]:
    """``make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))``: a hub with those stations enrolled."""
    made: list[World] = []

    def make(*specs: Spec) -> World:
        w = World(tmp_path / f"world{len(made)}", clock, template=templates.get(specs), codes=[s[0] for s in specs])
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    """A hub with no stations yet."""
    return make_world()


# -- which store a hub test runs on (issue 15) ------------------------------------------------------
#
# ``pytestmark = pytest.mark.usefixtures("hub_backend")`` runs a module on both backends. Fixtures that
# build hubs their own way (``sanji hub init``, ``Hub.create``) ask ``hub_database`` for the DSN to
# pass: None on SQLite, and a fresh database of the throwaway cluster on PostgreSQL.


# A test in such a module that is genuinely SQLite's (a file copy, a PRAGMA) says why beside this mark.
sqlite_only = pytest.mark.parametrize("hub_backend", ["sqlite"])
# And a test that is PostgreSQL's own counterpart of one of those (pg_dump where SQLite copies a file).
postgres_only = pytest.mark.parametrize("hub_backend", ["postgres"])


@pytest.fixture(params=["sqlite", "postgres"])
def hub_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hub_database(request: pytest.FixtureRequest) -> str | None:
    """The ``--database`` for a hub this test makes: None unless it runs with ``hub_backend`` postgres."""
    if "hub_backend" in request.fixturenames and request.getfixturevalue("hub_backend") == "postgres":
        return str(request.getfixturevalue("pg_dsn"))
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A test that did not run says so at the very end, with how many and why: a green line that hides
    twelve skipped browser tests is not green (issue 14 item 20)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.write_sep("!", f"{len(skipped)} TESTS DID NOT RUN", red=True, bold=True)
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"  {n:4d} skipped: {reason}", red=True, bold=True)
    terminalreporter.write_sep("!", "fix the reason above (bash .ci/run installs what the tests need)", red=True)
