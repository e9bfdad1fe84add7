"""The morning report of `sanji hub reconcile`: deadline warnings, overdue 容缺 materials, per-station
statistics, and the CSV for the district office.

Applications are back-entered (`node accept --from FILE`) with acceptance times weeks ago, so their
promised due dates fall in the past or in the next few working days. What the report should say is
worked out here from the catalogue JSON's own calendar and items, not through the code under test.
"""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.applicants import People, catalogue_items

from .conftest import CHINA, TOWNSHIP, VILLAGE_A, VILLAGE_B, Calendar, District, back_entry_line, ok

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

OPEN = {"accepted", "supplement_requested", "under_review", "inspecting", "approved", "denied"}
DEFERRED_DAYS = 5  # 容缺: supply within 5 working days, or the promise if shorter


def accepted_day_for(cal: Calendar, due: date, promised_days: int) -> date:
    """The latest day whose promise of ``promised_days`` working days falls due on ``due``."""
    for back in range(1, 120):
        day = due - timedelta(days=back)
        if cal.add(day, promised_days) == due:
            return day
    raise AssertionError(f"no acceptance day gives a due date of {due}")


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=CHINA)


class Plan:
    """What was accepted, and what the report must therefore say."""

    def __init__(self, today: date) -> None:
        self.today = today
        self.cal = Calendar()
        self.items = catalogue_items()
        self.apps: dict[str, dict[str, Any]] = {}  # applicant name → what we know

    def line(self, people: People, station: str, item: str, day: date, deferred: tuple[str, ...] = ()) -> str:
        text = back_entry_line(people, item, at(day), deferred=deferred)
        applicant = json.loads(text)["applicant"]["name"]
        self.apps[applicant] = {"station": station, "item": item, "day": day, "deferred": deferred}
        return text

    def due(self, app: dict[str, Any]) -> date:
        item = self.items[app["item"]]
        return app["day"] if item["kind"] == "immediate" else self.cal.add(app["day"], int(item["promised_days"]))

    def material_due(self, app: dict[str, Any]) -> date:
        item = self.items[app["item"]]
        days = DEFERRED_DAYS if item["kind"] == "immediate" else min(DEFERRED_DAYS, int(item["promised_days"]))
        return self.cal.add(app["day"], days)

    def working_days(self, a: date, b: date) -> int:
        """Working days in (a, b]."""
        return sum(self.cal.working(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))


def test_morning_report_warnings_statistics_and_csv(
    district: District, people: People, tmp_path: Path, hub_backend: str
) -> None:
    d, a, b = district, district.a, district.b
    today = datetime.now(CHINA).date()
    plan = Plan(today)
    cal = plan.cal
    yellow_due = cal.add(today, 2)
    a_lines = [
        plan.line(people, VILLAGE_A, "360802-0010", today - timedelta(days=30)),  # 5 days: long overdue
        plan.line(people, VILLAGE_A, "360802-0010", accepted_day_for(cal, yellow_due, 5)),  # due in 2
        plan.line(people, VILLAGE_A, "360802-0004", today - timedelta(days=20), deferred=("家庭收入情况声明",)),
        plan.line(people, VILLAGE_A, "360802-0017", today - timedelta(days=20), deferred=("解除劳动关系证明",)),
        plan.line(people, VILLAGE_A, "360802-0010", today - timedelta(days=30)),  # to be completed late
    ]
    b_lines = [
        plan.line(people, VILLAGE_B, "360802-0006", today - timedelta(days=40), deferred=("困难情况证明材料",)),
    ]
    with d.hub.serving():
        assert a.accept_lines(a_lines, tmp_path)["accepted"] == len(a_lines)
        assert b.accept_lines(b_lines, tmp_path)["accepted"] == len(b_lines)
        # Accepted at the window today.
        promised_today = a.accept(people, "360802-0004")
        immediate_today = a.accept(people, "360802-0001")
        b.accept(people, "360802-0003")
        b.accept(people, "360802-0009")
        ok("node", "transition", a.dir, immediate_today["number"], "--to", "completed")  # on time
        a.sync()
        b.sync()

        hub_apps = {s: d.hub_apps(s) for s in (VILLAGE_A, VILLAGE_B)}
        by_name = {x["applicant_name"]: x for apps in hub_apps.values() for x in apps}
        assert set(plan.apps) <= set(by_name), "applicant names identify the back-entered applications"
        late = [
            n
            for n, app in plan.apps.items()
            if app["item"] == "360802-0010" and app["day"] == today - timedelta(days=30)
        ][1]
        for step in ("under_review", "approved", "completed"):
            ok("hub", "transition", d.hub_dir, by_name[late]["number"], "--to", step)

        csv_file = tmp_path / "statistics.csv"
        out = ok("hub", "reconcile", d.hub_dir, "--csv", csv_file)
        final = {x["number"]: x for s in (VILLAGE_A, VILLAGE_B) for x in d.hub_apps(s)}

    report = out["report"]
    assert report["day"] == today.isoformat()
    assert report["integrity"] == "ok"
    if hub_backend == "sqlite":
        assert report["backup"] and Path(report["backup"]).is_file()
    else:  # PostgreSQL is backed up by its own tools (pg_dump): the job makes no file copy
        assert report["backup"] is None

    # -- deadline warnings, worked out here --------------------------------------------------------------
    red: dict[str, int] = {}
    yellow: dict[str, int] = {}
    materials: set[tuple[str, str, str]] = set()
    for name, app in plan.apps.items():
        number = by_name[name]["number"]
        assert by_name[name]["due_date"] == plan.due(app).isoformat(), f"due date of {number}"
        if final[number]["status"] not in OPEN:
            continue
        due = plan.due(app)
        if plan.items[app["item"]]["kind"] == "promised":
            if due < today:
                red[number] = plan.working_days(due, today)
            elif plan.working_days(today, due) <= 3:
                yellow[number] = plan.working_days(today, due)
        for material in app["deferred"]:
            if plan.material_due(app) < today:
                materials.add((number, material, plan.material_due(app).isoformat()))
    assert len(red) == 2 and len(yellow) == 1 and len(materials) == 3, (red, yellow, materials)

    w = report["warnings"]
    assert {x["number"]: x["overdue_working_days"] for x in w["red"]} == red
    assert {x["number"]: x["working_days_left"] for x in w["yellow"]} == yellow
    assert {(x["number"], x["material"], x["due"]) for x in w["materials_overdue"]} == materials
    assert by_name[late]["number"] not in red, "a completed application is not overdue"
    assert promised_today["number"] not in red | yellow
    for x in w["red"] + w["yellow"]:
        full = final[x["number"]]
        assert (x["station"], x["item"], x["status"], x["due_date"]) == (
            full["station"],
            full["item"],
            full["status"],
            full["due_date"],
        )
        assert "*" in x["applicant"], "names are masked in the report"
    assert out["overdue"] == len(red)

    # -- statistics per station ----------------------------------------------------------------------------
    def plan_kind(item: str) -> str:
        return str(plan.items[item]["kind"])

    def expected(station: str) -> dict[str, Any]:
        apps = [x for x in final.values() if x["station"] == station]
        done = [x for x in apps if x["status"] in ("completed", "delivered")]
        on_time = sum(x["due_date"] >= today.isoformat() for x in done)  # all completed today
        return {
            "station": station,
            "tier": "village",
            "accepted": len(apps),
            "accepted_today": sum(x["accepted_at"][:10] == today.isoformat() for x in apps),
            "completed": len(done),
            "on_time": on_time,
            "on_time_rate": round(on_time / len(done), 3) if done else None,
            "immediate": sum(plan_kind(x["item"]) == "immediate" for x in apps),
            "promised": sum(plan_kind(x["item"]) == "promised" for x in apps),
        }

    per_station = {s["station"]: s for s in report["statistics"]["per_station"]}
    # Every station that takes applications is listed, a quiet one with zeros.
    assert set(per_station) == {VILLAGE_A, VILLAGE_B, TOWNSHIP}
    assert per_station[TOWNSHIP]["accepted"] == 0
    for station in (VILLAGE_A, VILLAGE_B):
        got = {k: per_station[station][k] for k in expected(station)}
        assert got == expected(station)
    assert per_station[VILLAGE_A]["completed"] == 2 and per_station[VILLAGE_A]["on_time"] == 1
    assert per_station[VILLAGE_A]["accepted_today"] == 2 and per_station[VILLAGE_B]["accepted_today"] == 2
    assert report["statistics"]["per_tier"]["village"] == {"accepted": 10, "completed": 2, "on_time": 1}
    assert TOWNSHIP in {x["station"] for x in report["not_seen"]}
    assert not {VILLAGE_A, VILLAGE_B} & {x["station"] for x in report["not_seen"]}

    # -- the CSV: a header, one row per station ---------------------------------------------------------------
    with csv_file.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
        fh.seek(0)
        header = next(csv.reader(fh))
    assert header[:7] == ["station", "tier", "accepted", "accepted_today", "completed", "on_time", "on_time_rate"]
    assert [r["station"] for r in rows] == sorted([VILLAGE_A, VILLAGE_B, TOWNSHIP])
    for r in rows:
        if r["station"] == TOWNSHIP:
            assert int(r["accepted"]) == 0
            continue
        want = expected(r["station"])
        assert (
            int(r["accepted"]),
            int(r["completed"]),
            int(r["on_time"]),
            int(r["immediate"]),
            int(r["promised"]),
        ) == (want["accepted"], want["completed"], want["on_time"], want["immediate"], want["promised"])


def test_report_is_kept_and_runs_are_recorded(district: District, people: People) -> None:
    d, a = district, district.a
    with d.hub.serving():
        a.accept(people, "360802-0001")
        a.sync()
        first = ok("hub", "reconcile", d.hub_dir, "--no-backup")
        second = ok("hub", "reconcile", d.hub_dir, "--no-backup")
    assert first["report"]["backup"] is None
    assert second["stations_checked"] == 0 and second["divergent"] == 0
    hub = d.hub_db()
    try:
        runs = hub.execute("SELECT trigger, outcome, ended_ms >= started_ms FROM nightly_runs ORDER BY id").fetchall()
        reports = hub.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
    finally:
        hub.close()
    assert runs == [("on-demand", "ok", 1), ("on-demand", "ok", 1)]
    assert reports == 2
