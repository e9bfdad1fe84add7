"""A thief who copies a station's folder finds no citizen's data in it (issue 16, ``node/at_rest.py``).

A village station with staff accounts accepts generated applicants (``tests.conftest.People``) through
the real commands with ``--staff``; some are synced, some not. Its folder is copied as it lies on disk
(``node.db`` and its ``-wal``/``-shm``, the keys, everything), and every file's bytes are searched for
every applicant's name, ID number (and its digits alone), phone and address in UTF-8, UTF-16-LE/BE,
GB18030 and msgpack's str encoding: none is found. The same station, signed in, shows them all, and
the hub holds the plaintext of what was synced with nobody signed in.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from hub import inspection, operations
from hub.feed import feed_page
from node import at_rest_arrivals, at_rest_held, feed_quarantine, uplink
from node.station import Station
from protocol.codec import unpack
from protocol.document import open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.feed import FeedSpan
from protocol.keys import load_seal_public, load_verify_key
from replica.keyfile import load_keys
from sync import sealed_value
from tests.conftest import World
from tests.node.staff_helpers import STAFF_PASSWORD, sign_in, with_staff
from tests.node.test_staff_cli import CARD, ITEM, TOWNSHIP, VILLAGE, run

N = 6


@pytest.fixture
def village(world: World) -> Iterator[Station]:
    world.clock.ms = int(time.time() * 1000)  # the CLI stamps with the real clock; the hub must agree
    world.station(TOWNSHIP, "township")
    st = world.station(VILLAGE, "village", TOWNSHIP)
    with_staff(st.db, VILLAGE)
    yield st


def _encodings(text: str) -> list[bytes]:
    found = [text.encode(e) for e in ("utf-8", "utf-16-le", "utf-16-be", "gb18030")]
    return [*found, msgpack.packb(text, use_bin_type=True)]


def _needles(person: dict[str, str]) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for key in ("name", "id_number", "phone", "address"):
        for enc in _encodings(person[key]):
            out[enc] = f"{key} {person[key]}"
    digits = person["id_number"][:17]  # the ID number's digits alone, whatever its check character
    for enc in _encodings(digits):
        out[enc] = f"id digits {digits}"
    return out


def _accept(
    world: World, st: Station, capsys: pytest.CaptureFixture[str], n: int, *, item: str = ITEM, defer: str = CARD
) -> dict[str, str]:
    p = dict(world.people.applicant())
    p["address"] = f"兴桥镇岗塘村{n + 3}组{n * 7 + 11}号"
    args = ["node", "accept", str(st.folder), "--item", item, "--name", p["name"], "--id-number", p["id_number"]]
    args += ["--phone", p["phone"], "--address", p["address"], "--defer", defer, "--staff", "zhangsan"]
    for m in world.application(item, st=st, deferred=[defer]).submitted:
        args += ["--material", m]
    code, out = run(capsys, *args, stdin=STAFF_PASSWORD + "\n")
    assert code == 0, out
    p["id"], p["number"] = str(out["id"]), str(out["number"])
    return p


def _thief_finds(folder: Path, people: list[dict[str, str]]) -> list[str]:
    needles: dict[bytes, str] = {}
    for p in people:
        needles.update(_needles(p))
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {what}" for needle, what in needles.items() if needle in data]
    return found


def test_a_copied_station_folder_holds_no_applicant_data_and_signed_in_shows_it_all(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    people = [_accept(world, village, capsys, i) for i in range(N // 2)]
    world.push(village)  # unattended: nobody is signed in, no data key anywhere
    assert village.session is None
    people += [_accept(world, village, capsys, i) for i in range(N // 2, N)]
    uplink.build_outbox(village)  # built, not yet sent: the outbox is on disk too
    for p in people[: N // 2]:
        held = world.hub.records.values("application", p["id"])
        assert (held["applicant_name"], held["applicant_id"], held["applicant_phone"], held["address"]) == (
            p["name"],
            p["id_number"],
            p["phone"],
            p["address"],
        )
    assert world.hub.store.conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] == 0

    stolen = tmp_path / "stolen"
    shutil.copytree(village.folder, stolen)  # while open: the -wal and -shm come along
    assert any(p.name.endswith("-wal") for p in stolen.iterdir()) or (stolen / "node.db").exists()
    assert _thief_finds(stolen, people) == []
    # The test would see them if they were there: the same search finds a plaintext copy.
    (stolen / "plain.txt").write_text(people[0]["phone"], "utf-16-le")
    assert _thief_finds(stolen, people) == [f"plain.txt: phone {people[0]['phone']}"]

    code, out = run(
        capsys, "node", "applications", str(village.folder), "--reveal", "--staff", "zhangsan", stdin=STAFF_PASSWORD
    )
    assert code == 0, out
    rows = {str(r["id"]): r for r in out["applications"]}  # type: ignore[union-attr]
    for p in people:
        r = rows[p["id"]]
        assert (r["applicant_name"], r["applicant_id"], r["applicant_phone"]) == (p["name"], p["id_number"], p["phone"])
    world.push(village)  # the rest, still unattended
    for p in people[N // 2 :]:
        assert world.hub.records.values("application", p["id"])["applicant_id"] == p["id_number"]


def test_lists_show_masks_with_nobody_signed_in(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _accept(world, village, capsys, 0)
    row = village.conn.execute(
        "SELECT applicant_name, applicant_id, applicant_phone FROM applications WHERE id=?", (p["id"],)
    ).fetchone()
    assert row[0] == p["name"][0] + "*" * (len(p["name"]) - 1)
    assert row[1].startswith(p["id_number"][:6]) and "*" in row[1] and row[1].endswith(p["id_number"][-4:])
    assert row[2] == p["phone"][:3] + "****" + p["phone"][-4:]
    shown = village.shown_values("application", p["id"])
    assert shown["applicant_id"] == row[1]  # no session: the mask, never the sealed bytes


def test_an_id_number_or_full_name_is_found_by_its_keyed_token(
    world: World, village: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    from node.staff_accounts import sign_in
    from node.ui.apps import _by_token
    from replica.listing import Filters

    people = [_accept(world, village, capsys, i) for i in range(3)]
    assert _by_token(village, people[1]["id_number"], Filters()) is None  # nobody signed in: no token
    village.session = sign_in(
        village.db, station=VILLAGE, user="zhangsan", password=STAFF_PASSWORD, now_ms=village.clock()
    )
    for query in (people[1]["id_number"], people[1]["name"]):
        found = _by_token(village, query, Filters())
        assert found is not None and [r["id"] for r in found.rows] == [people[1]["id"]]
    assert _by_token(village, "测试", Filters()) is None  # not a whole name: the prefix search, as before
    tokens = village.conn.execute("SELECT COUNT(*) FROM search_tokens").fetchone()[0]
    assert tokens == 2 * len(people)


# -- what comes down from the hub while nobody is signed in ---------------------------------------------

DISTRICT_ITEM = "360802-0004"  # 最低生活保障申请: decided by the district, so the hub moves it
INCOME = "家庭收入情况声明"
FIELD_DEVICE = "360802-F01"


def _inspection_page(world: World, st: Station, number: str) -> bytes:
    """The hub moves application ``number`` to review and assigns its inspection: the task, carrying
    the applicant's address and phone in plaintext, is in the station's next feed page, which the
    hub signs and seals to the station as every page."""
    operations.transition(world.hub, number, "under_review")
    inspection.assign(world.hub, number, FIELD_DEVICE)
    cat = st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0
    return feed_page(world.hub, st.code, after=st.meta.int("feed_cursor"), catalogue_version=int(cat))


def _unusable_twin(world: World, st: Station, page: bytes) -> bytes:
    """The same genuine page with one change the station cannot read added, signed by the hub and
    sealed to the station: what the station sets aside, whole, and steps over."""
    doc = open_document(page, kind="feed", recipient=st.code, verify_key=st.hub_key, unseal_key=lambda _k: st.keys.seal)
    body = dict(doc.body)  # type: ignore[call-overload]
    body["changes"] = [*body["changes"], ["not", "a", "change"]]
    return sign_document(
        "feed",
        body,
        signer=world.hub.hub_id,
        recipient=st.code,
        signing_key=world.hub.keys.sign,
        seal_to=load_seal_public(st.keys.seal_pub),
        recipient_key=st.keys.seal_key_id,
        extra_header=FeedSpan.from_wire(doc.header).to_wire(),
    )


def _thief_opens(folder: Path) -> bytes:
    """What a thief opens with what the copied folder itself holds: every feed page kept in its
    database, opened with the station's own key (``keys.bin``) and the hub key its meta pins."""
    keys = load_keys(folder)
    conn = sqlite3.connect(folder / "node.db")
    try:
        meta = {str(k): unpack(bytes(v)) for k, v in conn.execute("SELECT key, value FROM meta")}
        frames = [bytes(r[0]) for r in conn.execute("SELECT frame FROM feed_quarantine WHERE frame IS NOT NULL")]
    finally:
        conn.close()
    hub_pub = load_verify_key(meta["hub_sign_pub"])  # type: ignore[arg-type]
    return b"".join(_opened_page(frame, str(meta["station"]), hub_pub, keys.seal) for frame in frames)


def _opened_page(frame: bytes, code: str, hub_pub: object, seal: object) -> bytes:
    try:
        doc = open_document(
            frame,
            kind="feed",
            recipient=code,
            verify_key=lambda _s, _k: hub_pub,  # type: ignore[arg-type,return-value]
            unseal_key=lambda _k: seal,  # type: ignore[arg-type,return-value]
        )
    except RemoteProtocolError:
        return b""
    return msgpack.packb(doc.body, use_bin_type=True)


def _needle_in(data: bytes, people: list[dict[str, str]]) -> list[str]:
    found: list[str] = []
    for p in people:
        found += [what for needle, what in _needles(p).items() if needle in data]
    return found


def test_what_the_hub_sends_while_nobody_is_signed_in_leaves_nothing_readable_either(
    world: World, village: Station, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world.station(FIELD_DEVICE, "field")
    visited, held = [_accept(world, village, capsys, i, item=DISTRICT_ITEM, defer=INCOME) for i in range(2)]
    world.push(village)
    assert village.session is None and village.meta.bytes("at_rest_pub")  # drawn at the first sign-in

    # A real page from the hub, applied unattended: the inspection task's phone and address are held
    # pending, sealed to the station's at-rest key.
    result = uplink.apply_feed(village, _inspection_page(world, village, visited["number"]))
    assert result.pulled >= 2  # the move to review and the task
    ((task_id, fields_b),) = village.conn.execute("SELECT rid, fields FROM changes WHERE entity='task'").fetchall()
    stored = unpack(bytes(fields_b))
    assert isinstance(stored, dict)
    mask, siv, pending = sealed_value.decode(stored["phone"])
    assert (mask, siv) == (visited["phone"][:3] + "****" + visited["phone"][-4:], None) and pending
    assert sealed_value.is_sealed(stored["address"])

    # A genuine page the station cannot apply, carrying the next task: set aside whole, stepped over.
    twin = _unusable_twin(world, village, _inspection_page(world, village, held["number"]))
    assert _needle_in(_opened_page(twin, VILLAGE, load_verify_key(world.hub.keys.sign_pub), village.keys.seal), [held])
    outcome = feed_quarantine.take_page(village, twin, source="http")
    assert outcome.skipped and "invalid change" in outcome.problem
    (digest,) = village.conn.execute("SELECT sha256 FROM feed_quarantine WHERE frame IS NOT NULL").fetchone()

    stolen = tmp_path / "stolen"
    shutil.copytree(village.folder, stolen)
    assert _thief_finds(stolen, [visited, held]) == []
    assert _needle_in(_thief_opens(stolen), [visited, held]) == []  # the kept page does not open with keys.bin

    # Signed in, the same station shows the task's values and gives the page back as it came.
    village.session = sign_in(village.db, "zhangsan", STAFF_PASSWORD, now_ms=village.clock(), code=VILLAGE)
    at_rest_arrivals.on_sign_in(village)  # what every sign-in does: the pending values are sealed for good
    assert at_rest_held.opened(village, bytes(digest)) == twin
    shown = village.shown_values("task", str(task_id))
    assert (shown["phone"], shown["address"]) == (visited["phone"], visited["address"])
