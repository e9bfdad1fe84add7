"""`node report` offline, the report at the hub, blobs carried by hand, and the device's purge."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hub import blobindex, operations
from node import blobs, inspection, purge, uplink, usb_files
from protocol.blob import CHUNK_SIZE, MAX_BLOB_BYTES, BlobRequest, chunk_count, chunk_span
from protocol.errors import MalformedError
from replica.errors import Refused
from tests.conftest import World
from tests.inspection.conftest import FIELD, VILLAGE, Scene, photo

DAY_MS = 86_400_000


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(
    scene: Scene, tmp_path: Path, task: str, sizes: tuple[int, ...] = (600_000, 300_000, 2_000), **kw: object
) -> tuple[dict[str, object], list[Path]]:
    shots = [photo(tmp_path, f"p{i}.jpg", n) for i, n in enumerate(sizes)]
    out = inspection.report(
        scene.field,
        task,
        result=str(kw.pop("result", "pass")),
        findings=["房屋为土木结构，家庭确有困难"],
        gps="27.1167,114.9833,8",
        photos=shots,
        **kw,
    )  # type: ignore[arg-type]
    return out, shots


def test_bad_reports_are_refused_and_write_nothing(scene: Scene, tmp_path: Path) -> None:
    task = scene.assigned()
    st = scene.field
    seq = st.meta.int("seq")
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\0" * (MAX_BLOB_BYTES + 1))
    good = photo(tmp_path, "ok.jpg", 1000)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    cases = [
        (dict(task_id="01900000-0000-7000-8000-000000000000"), r"没有与.*对应的踏勘任务"),
        (dict(result="maybe"), "--result 请用其中之一"),
        (dict(findings=["  "]), "--finding"),
        (dict(photos=[good, tmp_path / "missing.jpg"]), "不存在"),
        (dict(photos=[good, tmp_path]), "是文件夹"),
        (dict(photos=[good, big]), "超过 10 MiB 的上限"),
        (dict(photos=[empty]), "是空的"),
        (dict(photos=[good], signature=tmp_path / "nope.png"), "不存在"),
        (dict(gps="27.1"), "请写成 纬度,经度"),
        (dict(checks=["9=yes"]), "核查清单中没有"),
        (dict(checks=["2=maybe"]), "序号=是 或 序号=否"),
    ]
    for change, reason in cases:
        args: dict[str, object] = dict(task_id=task, result="pass", findings=["ok"])
        args.update(change)
        with pytest.raises(Refused, match=reason):
            inspection.report(st, **args)  # type: ignore[arg-type]
    assert st.meta.int("seq") == seq
    assert not (st.folder / "blobs").exists() or not any(p.is_file() for p in (st.folder / "blobs").rglob("*"))


def test_a_report_is_recorded_offline_with_photo_references(scene: Scene, world: World, tmp_path: Path) -> None:
    task = scene.assigned()
    sig = photo(tmp_path, "signature.png", 4_000)
    out, shots = record(scene, tmp_path, task, signature=sig, checks=["2=no"])
    assert out["task"] == task and out["status"] == "done"
    assert out["photos"] == [sha_of(p) for p in shots] and out["signature"] == sha_of(sig)
    store = blobs.store_of(scene.field)
    assert all(store.has(str(s)) for s in [*out["photos"], out["signature"]])  # type: ignore[misc]
    report = scene.field.records.values("report", task)
    assert report["result"] == "pass" and report["gps"] == [27.1167, 114.9833, 8.0] and "gps_flag" not in report
    assert list(report["checklist"].values()).count(False) == 1  # type: ignore[attr-defined]
    assert inspection.tasks(scene.field)[0]["status"] == "done"
    assert sorted(s for s, _ in blobs.pending(scene.field)) == sorted([*out["photos"], out["signature"]])  # type: ignore[misc]
    with pytest.raises(Refused, match="已经有报告了"):
        record(scene, tmp_path, task)

    # The records travel first; the hub shows the report and which photos it still lacks.
    world.push(scene.field)
    shown = operations.show(world.hub, scene.number)
    insp = shown["inspections"][0]  # type: ignore[index]
    assert insp["status"] == "done" and insp["report"]["findings"] == "房屋为土木结构，家庭确有困难"
    assert insp["photos"] == out["photos"]
    assert sorted(insp["missing_blobs"]) == sorted([*out["photos"], out["signature"]])  # type: ignore[misc]
    assert operations.status(world.hub)["missing_blobs"] == 4
    # The village that accepted the application sees the outcome too.
    world.pull(scene.village)
    assert scene.village.records.values("report", task)["result"] == "pass"


def test_an_implausible_position_is_kept_and_flagged(scene: Scene, tmp_path: Path) -> None:
    task = scene.assigned()
    out = inspection.report(scene.field, task, result="rectify", findings=["需整改"], gps="40.7,-74.0,900")
    assert "outside China" in str(out["gps_flag"]) and "accuracy" in str(out["gps_flag"])
    assert scene.field.records.values("report", task)["gps"] == [40.7, -74.0, 900.0]


def _chunks(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    for i in range(chunk_count(len(data))):
        off, n = chunk_span(len(data), i)
        out.append((i, data[off : off + n]))
    return out


def _send(world: World, station: str, data: bytes, index: int, chunk: bytes, claimed: bytes | None = None) -> dict:
    sha = hashlib.sha256(data).hexdigest()
    req = BlobRequest("chunk", sha, len(data), index, hashlib.sha256(claimed or chunk).hexdigest(), world.clock())
    return blobindex.receive_chunk(world.hub, station, req, chunk, source="test")


def test_the_hub_takes_chunks_resumably_and_refuses_tampering(scene: Scene, world: World, tmp_path: Path) -> None:
    task = scene.assigned()
    out, shots = record(scene, tmp_path, task, sizes=(3 * CHUNK_SIZE + 11, CHUNK_SIZE + 1))
    world.push(scene.field)
    data = shots[0].read_bytes()
    parts = _chunks(data)
    # A village may not upload photos it never reported; nothing is kept.
    with pytest.raises(blobindex.UnreferencedError):
        _send(world, VILLAGE, data, *parts[0])
    # Half an upload, then the hub says what it holds.
    for i, chunk in parts[:2]:
        got = _send(world, FIELD, data, i, chunk)
    assert got["held"] == [0, 1] and got["complete"] is False
    query = BlobRequest("query", str(out["photos"][0]), len(data), at_ms=world.clock())  # type: ignore[index]
    assert blobindex.progress(world.hub, FIELD, query)["held"] == [0, 1]
    # A chunk whose bytes are not the ones the station signed for is refused and not stored.
    with pytest.raises(blobindex.TamperedError):
        _send(world, FIELD, data, parts[2][0], b"\0" * len(parts[2][1]), claimed=parts[2][1])
    with pytest.raises(MalformedError):
        _send(world, FIELD, data, parts[2][0], parts[2][1][:-1])
    assert blobindex.progress(world.hub, FIELD, query)["held"] == [0, 1]
    for i, chunk in parts[2:]:
        got = _send(world, FIELD, data, i, chunk)
    assert got["complete"] is True
    store = blobindex.store_of(world.hub)
    assert store.read(str(out["photos"][0])) == data  # type: ignore[index]
    # A blob whose chunks match what was signed but not its name is refused and deleted whole.
    other = shots[1].read_bytes()
    forged = bytes([other[0] ^ 1]) + other[1:]
    sha = hashlib.sha256(other).hexdigest()
    for i, chunk in _chunks(forged):
        req = BlobRequest("chunk", sha, len(other), i, hashlib.sha256(chunk).hexdigest(), world.clock())
        if i == chunk_count(len(other)) - 1:
            with pytest.raises(blobindex.TamperedError, match="拼合后与其摘要不符"):
                blobindex.receive_chunk(world.hub, FIELD, req, chunk, source="test")
        else:
            blobindex.receive_chunk(world.hub, FIELD, req, chunk, source="test")
    assert not store.has(sha) and store.held_chunks(sha) == []
    assert blobindex.missing(world.hub, [str(s) for s in out["photos"]]) == [sha]  # type: ignore[attr-defined]
    assert operations.status(world.hub)["rejected_batches"] >= 2  # both refusals are on record


def test_blobs_travel_by_usb_and_the_device_purges_after_retention(scene: Scene, world: World, tmp_path: Path) -> None:
    task = scene.assigned()
    out, shots = record(scene, tmp_path, task)
    st = scene.field
    # Nothing is purged before the hub has receipted the report.
    assert purge.purge(st, 0)["purged"] == []
    usb = tmp_path / "usb"
    files = usb_files.export(st, usb)
    assert files["blobs"] == 3
    for f in files["files"]:  # type: ignore[attr-defined]
        path = Path(f)
        if blobindex.is_blob_file(path.read_bytes()):
            continue
        world.ingest([path.read_bytes()])
    world.push(st)  # the receipts come back (the batch is a duplicate by now)
    assert purge.purge(st, 0)["purged"] == []  # the photos are not at the hub yet
    blob_files = [Path(f) for f in files["files"] if blobindex.is_blob_file(Path(f).read_bytes())]  # type: ignore[attr-defined]
    # A blob file changed on the stick is refused.
    bad = tmp_path / "bad.sjo"
    raw = bytearray(blob_files[0].read_bytes())
    raw[-100] ^= 0xFF
    bad.write_bytes(bytes(raw))
    stored, dups, rejected = blobindex.import_files(world.hub, [bad, *blob_files])
    assert (stored, dups, [r["file"] for r in rejected]) == (3, 0, [str(bad)])
    assert blobindex.import_files(world.hub, blob_files)[:2] == (0, 3)
    assert operations.status(world.hub)["missing_blobs"] == 0
    for sha in out["photos"]:  # type: ignore[attr-defined]
        assert blobindex.store_of(world.hub).verify(str(sha))
    # The hub's word comes back by hand too.
    held = blobindex.held_document(world.hub, FIELD)
    assert held is not None
    assert blobs.import_held(st, held) == 3 and blobs.pending(st) == []
    # Within the retention period nothing goes; after it, the photos and the citizen's details do.
    assert purge.purge(st, 7)["purged"] == []
    seq, outbox = st.meta.int("seq"), st.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    world.clock.advance(7 * DAY_MS)
    done = purge.purge(st, 7)
    assert done["purged"] == [task] and done["blobs_deleted"] == 3
    assert done["bytes_freed"] == sum(p.stat().st_size for p in shots)
    assert not any(p.is_file() for p in (st.folder / "blobs").rglob("*"))
    assert st.records.values("task", task)["address"] == "" and st.records.values("task", task)["phone"] == ""
    text = b"".join(bytes(r[0]) for r in st.conn.execute("SELECT fields FROM changes"))
    assert "塅口村".encode() not in text and b"13900000001" not in text
    listed = inspection.tasks(st)[0]
    assert listed["address"] == "（已清除）" and listed["purged"] is True and listed["number"] == scene.number
    assert st.records.values("report", task)["photos"] == out["photos"]  # what was done stays
    # Local only: no change written, nothing to send, and the hub and the village keep their copies.
    assert st.meta.int("seq") == seq and uplink.build_outbox(st) == 0
    assert st.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == outbox
    assert world.hub.records.values("task", task)["address"] == "兴桥镇塅口村3组"
    assert purge.purge(st, 0)["purged"] == []  # idempotent
    assert purge.purged_keys(st) == {("task", task)}


def test_a_photo_shared_by_two_reports_stays_until_both_are_purged(scene: Scene, world: World, tmp_path: Path) -> None:
    first = scene.assigned()
    shared = photo(tmp_path, "shared.jpg", 5_000)
    inspection.report(scene.field, first, result="rectify", findings=["需整改"], photos=[shared])
    world.push(scene.field)
    blobindex.import_files(
        world.hub,
        [
            Path(f)
            for f in usb_files.export(scene.field, tmp_path / "u1")["files"]  # type: ignore[attr-defined]
            if f.endswith(".sjo")
        ],
    )
    blobs.import_held(scene.field, blobindex.held_document(world.hub, FIELD))  # type: ignore[arg-type]
    second = scene.assigned()  # a second visit after 整改
    inspection.report(scene.field, second, result="pass", findings=["已整改"], photos=[shared])
    done = purge.purge(scene.field, 0)
    assert done["purged"] == [first] and done["blobs_deleted"] == 0
    assert blobs.store_of(scene.field).has(sha_of(shared))


def test_the_pause_ends_when_the_report_was_recorded(scene: Scene, world: World) -> None:
    before = operations.show(world.hub, scene.number)["fields"]["due_date"]  # type: ignore[index]
    task = scene.assigned()  # Monday 2 March 2026
    world.clock.advance(2 * DAY_MS)  # the inspector goes on Wednesday
    inspection.report(scene.field, task, result="pass", findings=["属实"])
    world.push(scene.field)
    world.clock.advance(2 * DAY_MS)  # the hub decides on Friday: those two days count again
    operations.transition(world.hub, scene.number, "approved")
    cal = world.hub.catalogue()[1].calendar
    from datetime import date

    fields = operations.show(world.hub, scene.number)["fields"]
    assert fields["due_date"] == cal.add_working_days(date.fromisoformat(str(before)), 2).isoformat()  # type: ignore[index]
    assert fields["paused"] is False  # type: ignore[index]
