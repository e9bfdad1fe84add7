"""The list of inspections across applications (`hub/inspection.py` `list_inspections`): open and overdue tasks, reports
whose photos the hub still lacks, and `sanji hub inspections --json`.

Built in-process on the shared ``World`` (a fake clock starting Monday 2 March 2026, 09:00 China
time); the photos are random bytes made here, uploaded chunk by chunk through the same function the
blob route calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from datetime import datetime
from pathlib import Path

from hub import blobindex, operations
from hub.inspection import assign, list_inspections
from node import inspection
from protocol.blob import BlobRequest, chunk_count, chunk_span
from replica.ids import CHINA, iso_from_ms
from sanji.cli import main
from tests.conftest import World
from tests.inspection.conftest import FIELD, ITEM, Scene, photo

ROW_KEYS = {
    "task",
    "number",
    "item",
    "item_name",
    "inspector",
    "inspector_name",
    "assigned_at",
    "due",
    "status",
    "overdue",
    "result",
    "recorded_at",
    "photos",
    "missing_blobs",
    "application_status",
}


def at(text: str) -> int:
    """Milliseconds for a China-time moment, e.g. ``2026-03-09 23:59``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=CHINA).timestamp() * 1000)


def upload(world: World, data: bytes) -> None:
    """What the blob route does with each chunk of a photo once the device's signature checks out."""
    sha = hashlib.sha256(data).hexdigest()
    for index in range(chunk_count(len(data))):
        start, length = chunk_span(len(data), index)
        part = data[start : start + length]
        req = BlobRequest("chunk", sha, len(data), index, hashlib.sha256(part).hexdigest(), world.clock())
        blobindex.receive_chunk(world.hub, FIELD, req, part, source="test")


def second_application(scene: Scene) -> str:
    """Another application of the same item, under review and assigned to the field device a minute
    later (task ids are UUIDv7: within one millisecond their order is random)."""
    world = scene.world
    world.clock.advance(60_000)
    app = world.accept(scene.village, ITEM, address="兴桥镇塅口村7组", phone="13900000002")
    world.push(scene.village)
    number = str(app["number"])
    operations.transition(world.hub, number, "under_review")
    assign(world.hub, number, FIELD, due="2026-03-20")
    return number


def report(scene: Scene, task: str, tmp_path: Path) -> tuple[list[bytes], bytes]:
    """Record a 需整改 report with two photos and a signature on the device; push the records only."""
    shots = [photo(tmp_path, "a.jpg", 3_000), photo(tmp_path, "b.jpg", 2_000)]
    sig = photo(tmp_path, "sig.png", 1_500)
    inspection.report(
        scene.field,
        task,
        result="rectify",
        findings=["屋顶漏雨"],
        gps="27.1167,114.9833,8",
        photos=shots,
        signature=sig,
    )
    scene.world.push(scene.field)
    return [p.read_bytes() for p in shots], sig.read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_an_assigned_task_is_listed_as_open(scene: Scene, world: World) -> None:
    assert list_inspections(world.hub) == []
    task = scene.assigned()
    rows = list_inspections(world.hub)
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == ROW_KEYS
    assert row["task"] == task and row["number"] == scene.number
    assert row["item"] == ITEM and row["item_name"] == "最低生活保障申请"
    assert row["inspector"] == FIELD and row["inspector_name"] == f"{FIELD} 测试站"
    assert row["assigned_at"] == iso_from_ms(world.clock())
    assert row["due"] == "2026-03-09"  # five working days after Monday 2 March
    assert row["status"] == "assigned" and row["overdue"] is False
    assert (row["result"], row["recorded_at"], row["photos"], row["missing_blobs"]) == (None, None, 0, [])
    assert row["application_status"] == "inspecting"
    assert list_inspections(world.hub, open_only=True) == rows
    assert list_inspections(world.hub, missing_only=True) == []
    assert list_inspections(world.hub, overdue_only=True) == []


def test_an_assigned_task_past_its_due_date_is_overdue(scene: Scene, world: World, tmp_path: Path) -> None:
    task = scene.assigned()
    world.clock.ms = at("2026-03-09T23:59:00")  # the due day itself, China time: not yet overdue
    assert list_inspections(world.hub)[0]["overdue"] is False
    assert list_inspections(world.hub, overdue_only=True) == []
    world.clock.ms = at("2026-03-10T00:01:00")
    rows = list_inspections(world.hub, overdue_only=True)
    assert [r["task"] for r in rows] == [task] and rows[0]["overdue"] is True
    assert list_inspections(world.hub, open_only=True)[0]["overdue"] is True
    # Once the report arrives the task is done: late, but no longer open or overdue.
    inspection.report(scene.field, task, result="pass", findings=["属实"])
    world.push(scene.field)
    row = list_inspections(world.hub)[0]
    assert (row["status"], row["overdue"], row["result"]) == ("done", False, "pass")
    assert list_inspections(world.hub, overdue_only=True) == []
    assert list_inspections(world.hub, open_only=True) == []


def test_a_report_whose_photos_the_hub_lacks_is_listed_until_they_arrive(
    scene: Scene, world: World, tmp_path: Path
) -> None:
    task = scene.assigned()
    shots, sig = report(scene, task, tmp_path)
    other = second_application(scene)  # newer, open, nothing missing
    rows = list_inspections(world.hub)
    assert [r["number"] for r in rows] == [other, scene.number]  # newest first
    missing = list_inspections(world.hub, missing_only=True)
    assert [r["task"] for r in missing] == [task]
    row = missing[0]
    assert row["missing_blobs"] == [sha(shots[0]), sha(shots[1]), sha(sig)]
    assert (row["status"], row["result"], row["photos"]) == ("done", "rectify", 2)
    assert row["recorded_at"] and row["application_status"] == "inspecting"
    # The filter applies before the limit: the newest task has nothing missing, the older one is still found.
    assert [r["task"] for r in list_inspections(world.hub, missing_only=True, limit=1)] == [task]
    assert [r["number"] for r in list_inspections(world.hub, limit=1)] == [other]
    assert [r["number"] for r in list_inspections(world.hub, open_only=True)] == [other]

    upload(world, shots[1])
    assert list_inspections(world.hub, missing_only=True)[0]["missing_blobs"] == [sha(shots[0]), sha(sig)]
    upload(world, shots[0])
    upload(world, sig)
    assert list_inspections(world.hub, missing_only=True) == []
    done = next(r for r in list_inspections(world.hub) if r["task"] == task)
    assert done["missing_blobs"] == [] and done["photos"] == 2


def run_cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    assert code == 0, err.getvalue()
    return code, out.getvalue()


def test_the_cli_prints_one_document_and_one_line_per_task(scene: Scene, world: World, tmp_path: Path) -> None:
    task = scene.assigned()
    shots, sig = report(scene, task, tmp_path)
    other = second_application(scene)
    folder = str(world.root / "hub")

    _, text = run_cli("hub", "inspections", folder, "--json")
    doc = json.loads(text)  # exactly one document: anything else on stdout would not parse
    assert list(doc) == ["inspections"] and len(doc["inspections"]) == 2
    assert all(set(r) == ROW_KEYS for r in doc["inspections"])
    assert [r["number"] for r in doc["inspections"]] == [other, scene.number]

    _, text = run_cli("hub", "inspections", folder, "--missing", "--json")
    rows = json.loads(text)["inspections"]
    assert [r["task"] for r in rows] == [task]
    assert rows[0]["missing_blobs"] == [sha(shots[0]), sha(shots[1]), sha(sig)]

    _, text = run_cli("hub", "inspections", folder, "--open", "--json")
    assert [r["number"] for r in json.loads(text)["inspections"]] == [other]

    _, text = run_cli("hub", "inspections", folder)
    lines = text.strip().split("\n")
    assert len(lines) == 2
    assert lines[0].startswith(other) and "待踏勘" in lines[0] and "期限 2026-03-20" in lines[0]
    assert lines[1].startswith(scene.number) and "需整改" in lines[1] and "缺 3 个文件" in lines[1]
    assert "最低生活保障申请" in lines[1] and "照片 2 张" in lines[1]
    upload(world, shots[0])
    upload(world, shots[1])
    upload(world, sig)
    _, text = run_cli("hub", "inspections", folder, "--missing")
    assert text.strip() == "（无踏勘任务）"


def test_no_row_says_anything_about_the_citizen(scene: Scene, world: World, tmp_path: Path) -> None:
    task = scene.assigned()
    report(scene, task, tmp_path)
    second_application(scene)
    citizen: set[str] = set()
    for (app_id,) in world.hub.store.conn.execute("SELECT id FROM applications"):
        vals = world.hub.records.values("application", str(app_id))
        citizen |= {str(vals[k]) for k in ("applicant_name", "applicant_id", "applicant_phone", "address")}
    assert len(citizen) == 8 and "13900000002" in citizen and "兴桥镇塅口村3组" in citizen
    for options in ({}, {"missing_only": True}, {"open_only": True}):
        rows = list_inspections(world.hub, **options)  # type: ignore[arg-type]
        assert rows
        for row in rows:
            assert set(row) == ROW_KEYS
            text = json.dumps(row, ensure_ascii=False)
            assert not [c for c in citizen if c in text], row
