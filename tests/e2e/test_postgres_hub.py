"""A district whose hub keeps its store in PostgreSQL: `sanji hub init HUB --database postgresql://…`,
then `hub serve`, `hub enroll`, stations' push and pull, all as real processes (CONTRACT.md's surface).

The database is a fresh one on the throwaway cluster (``tests/pg_fixtures.py``); without PostgreSQL's
binaries these tests fail with how to install them, never skip.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from replica.keyfile import load_keys
from tests.applicants import People

from .conftest import DISTRICT, TOWNSHIP, Hub, Node, init_online
from .processes import free_loopback_port, ok, parallel, run_sanji

pytestmark = pytest.mark.slow

IMMEDIATE = "360802-0001"
PROMISED_TOWNSHIP = "360802-0009"
PROMISED_DISTRICT = "360802-0004"


def _sync(node: Node) -> dict[str, object]:
    res = node.sync()
    assert res.code == 0, f"node sync of {node.code} exited {res.code}: {res.stderr.strip()}"
    return dict(res.data)


def _pg_hub(folder: Path, dsn: str) -> Hub:
    doc = ok("hub", "init", folder, "--district", DISTRICT, "--database", dsn)
    assert doc == {"hub_id": DISTRICT, "catalogue_version": 1}
    return Hub(folder, free_loopback_port())


def _secrets(folder: Path) -> list[bytes]:
    """The hub's private keys as raw bytes: its online signing and sealing keys and its tracking key."""
    keys = load_keys(folder)
    raw = [
        keys.sign.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        keys.seal.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
    ]
    tracking = folder / "keys" / "tracking"  # made when the first tracking code is
    raw += [tracking.read_bytes()] if tracking.exists() else []
    return [*raw, *(r.hex().encode() for r in raw)]


def _everything_in(dsn: str) -> bytes:
    """Every text and binary value of every table of the database, end to end."""
    out = bytearray()
    with psycopg.connect(dsn) as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    out += cell if isinstance(cell, bytes) else str(cell).encode()
    return bytes(out)


def test_init_keeps_the_store_in_postgresql_and_the_keys_in_the_folder(tmp_path: Path, pg_dsn: str) -> None:
    folder = tmp_path / "hub"
    _pg_hub(folder, pg_dsn)
    assert not (folder / "hub.db").exists(), "a PostgreSQL hub keeps no SQLite store"
    settings = folder / "hub-database.json"
    assert json.loads(settings.read_text("utf-8")) == {"backend": "postgresql", "dsn": pg_dsn}
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600, "the DSN may carry a password"
    stored = _everything_in(pg_dsn)
    assert DISTRICT.encode() in stored and b"hub_id" in stored  # the scan does see the data
    assert not [s for s in _secrets(folder) if s in stored], "a private key is readable from the database"
    assert ok("hub", "status", folder)["hub_id"] == DISTRICT
    # A second hub cannot be made in a database that holds one (nor the folder reused).
    res = run_sanji("hub", "init", tmp_path / "second", "--database", pg_dsn)
    assert res.code != 0 and res.data["error"] == "database_not_empty", res
    assert not (tmp_path / "second").exists()


def test_init_refuses_an_unreachable_database_and_leaves_no_folder(tmp_path: Path) -> None:
    port = free_loopback_port()
    res = run_sanji("hub", "init", tmp_path / "hub", "--database", f"postgresql://sanji@127.0.0.1:{port}/none")
    assert res.code != 0 and res.data["error"] == "database_unreachable", res
    assert "连不上区局的 PostgreSQL 数据库" in res.data["reason"]
    assert not (tmp_path / "hub").exists()


@pytest.fixture(params=["sqlite", "postgres"])
def any_hub(request: pytest.FixtureRequest, tmp_path: Path) -> Hub:
    """A new hub on either backend: the same district must behave the same on both."""
    if request.param == "postgres":
        return _pg_hub(tmp_path / "hub", request.getfixturevalue("pg_dsn"))
    assert ok("hub", "init", tmp_path / "hub", "--district", DISTRICT)["hub_id"] == DISTRICT
    return Hub(tmp_path / "hub", free_loopback_port())


def test_offline_stations_sync_exactly_once_on_either_backend(tmp_path: Path, any_hub: Hub, people: People) -> None:
    hub = any_hub
    hub.enroll(TOWNSHIP, tier="township", name="测试镇便民服务中心")
    try:
        with hub.serving():
            township = init_online(hub, tmp_path / "township", TOWNSHIP, tier="township", parent="")
            a, b = parallel(
                lambda: init_online(hub, tmp_path / "a", f"{TOWNSHIP}-01"),
                lambda: init_online(hub, tmp_path / "b", f"{TOWNSHIP}-02"),
            )
        # A day of work at both windows while the hub is down.
        accepted_a, accepted_b = parallel(
            lambda: [a.accept(people, IMMEDIATE), a.accept(people, PROMISED_TOWNSHIP)],
            lambda: [b.accept(people, IMMEDIATE), b.accept(people, PROMISED_DISTRICT, defer=("家庭收入情况声明",))],
        )
        numbers_a = {d["number"] for d in accepted_a}
        numbers_b = {d["number"] for d in accepted_b}
        assert all(res.code == 3 for res in parallel(a.sync, b.sync)), "the hub is down"

        with hub.serving():
            for out in parallel(lambda: _sync(a), lambda: _sync(b)):
                assert out["pushed"] > 0 and out["pending"] == 0 and out.get("refused", []) == [], out
            # Sent again (both at once): nothing more is applied.
            for out in parallel(lambda: _sync(a), lambda: _sync(b)):
                assert out["pushed"] == 0 and out["pending"] == 0, out
            # The township's feed brings its villages' applications but those the district decides.
            _sync(township)
            decided_above = {accepted_b[1]["number"]}  # PROMISED_DISTRICT
            assert set(township.numbers()) == (numbers_a | numbers_b) - decided_above
            # A status change at the hub reaches the accepting station through its feed.
            number = sorted(numbers_a)[0]
            ok("hub", "transition", hub.dir, number, "--to", "completed")
            assert _sync(a)["pulled"] >= 1
            assert a.by_number()[number]["status"] == "completed"

        numbers = hub.numbers()
        assert len(numbers) == len(set(numbers)) == 4, f"each application once at the hub: {sorted(numbers)}"
        assert set(numbers) == numbers_a | numbers_b
        assert set(hub.numbers(a.code)) == numbers_a and set(hub.numbers(b.code)) == numbers_b
        per_station = {s["code"]: s for s in hub.status()["stations"]}
        assert per_station[a.code]["applications"] == 2 and per_station[b.code]["applications"] == 2
        if (hub.dir / "hub-database.json").exists():
            # After a day's work too, no private key of the hub is readable from the database alone.
            dsn = json.loads((hub.dir / "hub-database.json").read_text("utf-8"))["dsn"]
            assert not [s for s in _secrets(hub.dir) if s in _everything_in(dsn)]
    finally:
        hub.stop_all()


def test_two_hub_processes_on_one_database_apply_each_change_once(tmp_path: Path, pg_dsn: str, people: People) -> None:
    """Two `hub serve` processes over one PostgreSQL database (one port each, as `--workers` will
    share one): stations sync with either, at once, move from one to the other mid-chain, while the
    CLI (a third process) decides; every application is at the hub once and every feed is whole."""
    first = _pg_hub(tmp_path / "hub", pg_dsn)
    second = Hub(first.dir, free_loopback_port())
    first.enroll(TOWNSHIP, tier="township", name="测试镇便民服务中心")
    try:
        first.start()
        second.start()
        township = init_online(first, tmp_path / "township", TOWNSHIP, tier="township", parent="")
        villages = parallel(
            *(
                (lambda n=n: init_online(first if n % 2 else second, tmp_path / f"v{n}", f"{TOWNSHIP}-{n:02d}"))
                for n in range(1, 5)
            )
        )
        accepted = parallel(*((lambda v=v: [v.accept(people, IMMEDIATE) for _ in range(3)]) for v in villages))
        numbers = {v.code: {d["number"] for d in docs} for v, docs in zip(villages, accepted, strict=True)}
        for out in parallel(*((lambda v=v: _sync(v)) for v in villages)):
            assert out["pushed"] > 0 and out["pending"] == 0 and out.get("refused", []) == [], out

        # Each station moves to the other process and goes on with its chain there, while the hub's
        # own decisions are written by the CLI beside both servers.
        moved = parallel(
            *(
                (lambda v=v, n=n: ok("node", "set-hub", v.dir, (second if n % 2 else first).url))
                for n, v in enumerate(villages, start=1)
            )
        )
        assert len(moved) == 4
        decided = [sorted(numbers[v.code])[0] for v in villages]
        more = parallel(
            *((lambda v=v: [v.accept(people, PROMISED_TOWNSHIP) for _ in range(2)]) for v in villages),
            *(
                (lambda number=number: ok("hub", "transition", first.dir, number, "--to", "completed"))
                for number in decided
            ),
        )
        for v, docs in zip(villages, more[: len(villages)], strict=True):
            numbers[v.code] |= {d["number"] for d in docs}
        for out in parallel(*((lambda v=v: _sync(v)) for v in villages)):
            assert out["pending"] == 0 and out.get("refused", []) == [], out

        everything = set().union(*numbers.values())
        at_hub = first.numbers()
        assert len(at_hub) == len(set(at_hub)) == 20 and set(at_hub) == everything
        for v in villages:
            assert set(first.numbers(v.code)) == numbers[v.code]
            assert v.by_number()[decided[villages.index(v)]]["status"] == "completed"  # its feed brought it
        _sync(township)
        assert set(township.numbers()) == everything, "the township's feed is whole, from either process"
    finally:
        first.stop_all()
        second.stop_all()
