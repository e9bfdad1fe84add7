"""The first sign-in's migration of a station that kept plaintext (issue 16): killed between batches it
loses nothing and the next sign-in finishes it, every value sealed exactly once and readable
(``node/at_rest_arrivals.reseal``); at the window it runs off the event loop behind a progress page
that refreshes itself (``node/ui/sealing.py``). Applicants are generated (``tests.conftest.People``).

No timing is measured: the window's worker is held between two batches until the loop has answered
other requests, which it could not do if the migration ran on the loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node import at_rest, at_rest_arrivals
from node.server import create_app
from node.staff_accounts import sign_in
from node.station import Station
from node.ui import sealing
from protocol.codec import unpack
from sync import sealed_value
from sync.model import PERSONAL
from tests.conftest import World
from tests.node.staff_helpers import STAFF_PASSWORD, with_staff
from tests.node.test_at_rest_arrivals import _accept_plain, _sign_in
from tests.node.test_staff_cli import TOWNSHIP, VILLAGE
from tests.node.test_thief import _thief_finds
from tests.ui.inproc import csrf_of

ROOT = Path(__file__).resolve().parents[2]
HOLD_S = 20.0  # only a fail-safe: the loop answers long before, unless the migration blocks it

# Run in a process of its own: sign in, start the migration in batches of CHUNK, and die by SIGKILL
# the moment the first batch has committed, as a PC switched off mid-way.
KILLED_MIDWAY = """
import os, signal, sys
from pathlib import Path
from node import at_rest_arrivals, staff_accounts
from node.station import Station
st = Station(Path(sys.argv[1]))
st.session = staff_accounts.sign_in(st.db, station=st.code, user="zhangsan", password=sys.argv[2], now_ms=st.clock())
at_rest_arrivals.on_sign_in(st, progress=lambda n: os.kill(os.getpid(), signal.SIGKILL), chunk=int(sys.argv[3]))
"""


@pytest.fixture
def village(world: World) -> Iterator[Station]:
    world.clock.ms = int(time.time() * 1000)  # the CLI stamps with the real clock; the hub must agree
    world.station(TOWNSHIP, "township")
    yield world.station(VILLAGE, "village", TOWNSHIP)


def _plaintext_station(world: World, st: Station, capsys: pytest.CaptureFixture[str], n: int) -> list[dict[str, str]]:
    """A station from before issue 16 with ``n`` applications, then upgraded: it has accounts now."""
    people = [_accept_plain(world, st, capsys, i) for i in range(n)]
    with_staff(st.db, VILLAGE)
    return people


def _personal_cells(st: Station) -> list[tuple[str, str, str, object]]:
    out = []
    for entity, rid, fields in st.conn.execute("SELECT entity, rid, fields FROM changes"):
        values = unpack(bytes(fields))
        assert isinstance(values, dict)
        out += [(str(entity), str(rid), k, v) for k, v in values.items() if k in PERSONAL.get(str(entity), ())]
    return out


def _sealed_once_and_readable(st: Station, people: list[dict[str, str]]) -> None:
    """Every personal value in the log is sealed under the data key, and opens to the plaintext itself,
    not to a sealed value sealed again; the records agree; nothing is pending, nothing is left due."""
    session = sign_in(st.db, station=VILLAGE, user="zhangsan", password=STAFF_PASSWORD, now_ms=st.clock())
    rest = at_rest.AtRest(session.data_key(st.clock()), VILLAGE)
    cells = _personal_cells(st)
    assert cells
    for entity, rid, name, value in cells:
        assert sealed_value.is_sealed(value), (entity, name)
        _mask, siv, pending = sealed_value.decode(value)  # type: ignore[arg-type]
        assert siv is not None and pending is None
        opened = rest.open(entity, rid, name, value)
        assert isinstance(opened, str) and not sealed_value.is_sealed(opened.encode())
    for p in people:
        values = rest.open_values("application", p["id"], st.records.values("application", p["id"]))
        assert (values["applicant_name"], values["applicant_id"], values["applicant_phone"], values["address"]) == (
            p["name"],
            p["id_number"],
            p["phone"],
            p["address"],
        )
    assert st.conn.execute("SELECT COUNT(*) FROM search_tokens").fetchone()[0] == 2 * len(people)
    assert not at_rest_arrivals.pending_work(st) and not st.meta.get("scrub_due")


def test_a_migration_killed_between_batches_loses_nothing_and_the_next_sign_in_finishes_it(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    people = _plaintext_station(world, village, capsys, 4)
    logged = village.conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_MIDWAY, str(village.folder), STAFF_PASSWORD, "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr  # SIGKILL, after the first batch committed

    mark = village.meta.int("reseal_rowid")
    assert 0 < mark < village.conn.execute("SELECT MAX(rowid) FROM changes").fetchone()[0]
    assert village.meta.get("scrub_due") is True  # plaintext was sealed over, and the scrub is still owed
    # Each batch's records were refolded with it: the first batch's application is masked in the lists
    # already, the others still plain, every one of them there.
    (first_app,) = village.conn.execute(
        "SELECT rid FROM changes WHERE entity='application' AND rowid<=? ORDER BY rowid LIMIT 1", (mark,)
    ).fetchone()
    rows = dict(village.conn.execute("SELECT id, applicant_id FROM applications").fetchall())
    assert sorted(rows) == sorted(p["id"] for p in people)
    assert "*" in rows[first_app] and sum("*" not in v for v in rows.values()) >= 1

    shown = _sign_in(capsys, village)  # the next sign-in goes on from the mark
    assert {i: shown[i]["applicant_id"] for i in shown} == {p["id"]: p["id_number"] for p in people}
    assert village.conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0] == logged
    _sealed_once_and_readable(village, people)
    village.close()
    stolen = tmp_path / "stolen"
    shutil.copytree(village.folder, stolen)
    assert _thief_finds(stolen, people) == []


async def test_the_window_seals_a_station_off_the_loop_behind_a_progress_page(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    people = _plaintext_station(world, village, capsys, 3)
    total = at_rest_arrivals.remaining(village)
    monkeypatch.setattr(sealing, "INLINE_ROWS", 0)  # three applications are a "large" station here
    monkeypatch.setattr(sealing, "BATCH_ROWS", 1)
    reached, released = threading.Event(), threading.Event()
    held_on: list[str] = []
    real = at_rest_arrivals.reseal

    def held_reseal(st: Any, progress: Any = None, *, chunk: int) -> dict[str, int]:
        def after_batch(done: int) -> None:
            progress(done)
            if done == 1:  # hold the worker after its first batch until the loop has answered
                held_on.append(threading.current_thread().name)
                reached.set()
                released.wait(HOLD_S)

        return real(st, after_batch, chunk=chunk)

    monkeypatch.setattr(at_rest_arrivals, "reseal", held_reseal)
    app = create_app(village.folder, 3600.0, clock=world.clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        page = await client.get("/signin")
        form = {"csrf": csrf_of(await page.text()), "user": "zhangsan", "password": STAFF_PASSWORD, "next": "/"}
        assert (await client.post("/signin", data=form, allow_redirects=False)).status == 303

        resp = await client.get("/applications", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/sealing?next=%2Fapplications"
        while not reached.is_set():
            await asyncio.sleep(0.01)  # the loop turns while the worker walks
        progress = await client.get("/sealing?next=%2Fapplications")
        text = await progress.text()
        assert progress.status == 200 and f"正在加密本站已有数据：已完成 1 / {total}" in text
        assert '<meta http-equiv="refresh" content="2">' in text
        assert (await client.get("/status.json")).status == 200  # the status bar's poll, meanwhile
        again = await client.get("/", allow_redirects=False)  # any page waits for the migration
        assert again.status == 303 and again.headers["Location"].startswith("/sealing")
        released.set()

        while True:
            resp = await client.get("/sealing?next=%2Fapplications", allow_redirects=False)
            text = await resp.text()
            if resp.status != 200 or 'id="sealing-progress"' not in text or "已全部加密" in text:
                break
            assert "正在加密本站已有数据：已完成" in text and "<progress" in text
            await asyncio.sleep(0.05)
        assert resp.status == 200 and f"本站已有数据已全部加密：已完成 {total} / {total}" in text
        assert at_rest_arrivals.BACKUP_NOTICE in text and 'href="/applications" id="sealing-continue"' in text
        listing = await client.get("/applications", allow_redirects=False)
        assert listing.status == 200
        assert held_on and held_on[0] != threading.main_thread().name
    village.close()
    after = Station(village.folder, clock=world.clock)
    try:
        _sealed_once_and_readable(after, people)
    finally:
        after.close()
