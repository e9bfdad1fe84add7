"""Rotated backups cost what changed: a full copy, then only the changed pages; `hub restore` takes
either and gives back the hub exactly as it was when that backup was taken (issue 20)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub import backup_rotation, nightly
from hub.service import Hub
from tests.applicants import People
from tests.conftest import FakeClock, sqlite_only

from .conftest import District, ok, run_sanji

# SQLite only, and said so in every test's id: rotated backups are copies of hub.db's pages. On
# PostgreSQL the nightly job makes no copy (test_schedule.py) and the database is dumped by its own
# tools (test_disasters.py: an older pg_dump put back, and the stations bring the rest).
pytestmark = [pytest.mark.usefixtures("hub_backend"), sqlite_only]


def _numbers(hub_dir: Path) -> set[str]:
    with sqlite3.connect(hub_dir / "hub.db") as conn:
        return {str(n) for (n,) in conn.execute("SELECT number FROM applications")}


def _rotate(hub_dir: Path, clock: FakeClock) -> dict[str, object]:
    clock.advance(86_400_000)
    hub = Hub.open(hub_dir, clock=clock)
    try:
        return nightly.rotate_backups(hub)
    finally:
        hub.close()


def test_a_delta_holds_the_changed_pages_and_restores_like_its_night(district: District, people: People) -> None:
    d = district
    with d.hub.serving():
        for _ in range(30):
            d.a.accept(people)
        d.a.sync()
    clock = FakeClock()
    full = _rotate(d.hub_dir, clock)
    at_full = _numbers(d.hub_dir)
    with d.hub.serving():
        for _ in range(3):
            d.a.accept(people)
        d.a.sync()
    delta = _rotate(d.hub_dir, clock)
    at_delta = _numbers(d.hub_dir)
    with d.hub.serving():
        d.a.accept(people)
        d.a.sync()
    assert full["kind"] == "full" and delta["kind"] == "delta"
    assert delta["base"] == full["file"]
    assert 0 < int(str(delta["changed_pages"])) < int(str(delta["pages"])) // 2
    assert int(str(delta["bytes"])) < int(str(full["bytes"]))
    assert len(at_delta) == len(at_full) + 3 and len(_numbers(d.hub_dir)) == len(at_delta) + 1

    restored = ok("hub", "restore", d.hub_dir, "--from", delta["file"])
    assert restored["restored"] is True and restored["from"] == delta["file"]
    assert _numbers(d.hub_dir) == at_delta
    assert ok("hub", "restore", d.hub_dir, "--from", full["file"])["restored"] is True
    assert _numbers(d.hub_dir) == at_full
    assert not (d.hub_dir / "hub.db.restoring").exists()


def test_a_damaged_or_orphaned_delta_is_refused_and_the_hub_left_alone(district: District, people: People) -> None:
    d = district
    with d.hub.serving():
        d.a.accept(people)
        d.a.sync()
    clock = FakeClock()
    full = _rotate(d.hub_dir, clock)
    with d.hub.serving():
        d.a.accept(people)
        d.a.sync()
    delta = _rotate(d.hub_dir, clock)
    before = _numbers(d.hub_dir)
    path = Path(str(delta["file"]))
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0xFF  # inside the compressed pages
    damaged = path.with_name(path.name.replace(".delta", ".9.delta"))  # beside the same full copy
    damaged.write_bytes(bytes(raw))
    failed = run_sanji("hub", "restore", d.hub_dir, "--from", damaged)
    assert failed.code != 0 and _numbers(d.hub_dir) == before
    Path(str(full["file"])).rename(str(full["file"]) + ".moved")
    orphan = run_sanji("hub", "restore", d.hub_dir, "--from", path)
    assert orphan.code == 2 and "完整备份" in orphan.stderr
    assert _numbers(d.hub_dir) == before


@pytest.mark.parametrize("changed", [True, False])
def test_a_new_full_copy_when_most_pages_changed_or_the_week_is_over(
    district: District, people: People, changed: bool
) -> None:
    d = district
    clock = FakeClock()
    first = _rotate(d.hub_dir, clock)
    if changed:
        with d.hub.serving():
            for _ in range(40):
                d.a.accept(people)
            d.a.sync()
        with sqlite3.connect(d.hub_dir / "hub.db") as conn:
            conn.execute("VACUUM")  # every table rewritten: most pages move
        assert _rotate(d.hub_dir, clock)["kind"] == "full"
    else:
        kinds = [_rotate(d.hub_dir, clock)["kind"] for _ in range(backup_rotation.FULL_EVERY)]
        assert kinds == ["delta"] * (backup_rotation.FULL_EVERY - 1) + ["full"]
        assert all(int(str(_rotate(d.hub_dir, clock)["changed_pages"])) <= 2 for _ in range(2))
    assert first["kind"] == "full"
