"""Issue 12's compromised station against a real hub process: authentic is not authorised.

A village (or a field device) keeps its real keys but runs modified software: it writes changes its
own commands would refuse, straight through its write path without the admission check, beside
honest ones, and syncs the normal way. For every attack the hub must apply none of the forged
changes, apply every honest change of the same batch, hold each forgery in quarantine with a stable
code and a Chinese reason, and keep showing the truth: on `sanji hub show`, on the dashboard, and at a
neighbouring station. The hub is served without --allow-unsealed-for-tests, as in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.station import Station
from protocol.batch import build_batch
from protocol.codec import pack, unpack
from replica.ids import iso_from_ms
from tests.e2e.processes import http, ok, run_sanji
from tests.hostile.compromised import (
    DISTRICT_ONLY,
    FIELD_A,
    FIELD_B,
    INSPECTED,
    NEIGHBOUR,
    VILLAGE,
    Dashboard,
    District,
    app_id,
    build_district,
    compromised,
    forged_count,
    held,
    held_for,
    hub_rows,
    new_application,
    section,
    seen,
    station_values,
    upcoming_number,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[District]:
    yield from build_district(tmp_path_factory.mktemp("compromised"), seed=12)


@pytest.fixture(scope="module")
def dash(d: District) -> Dashboard:
    board = Dashboard(d.hub.url)
    board.login()
    return board


def dashboard_status(dash: Dashboard, number: str) -> str:
    m = re.search(r'data-status="(\w+)"', dash.get(f"/applications/{number}"))
    assert m, f"no status badge on the page of {number}"
    return m.group(1)


def only_held(d: District, rec_id: str) -> tuple[str, str]:
    """The one quarantine row holding a change to ``rec_id``: (code, reason)."""
    rows = held_for(d.hub, rec_id)
    assert len(rows) == 1, f"{rec_id}: expected one held change, found {rows}"
    assert rows[0].sender == rows[0].origin  # held under the name of the station that signed it
    return rows[0].code, rows[0].reason


# -- 1. workflow bypass -----------------------------------------------------------------------------


def test_workflow_bypass_is_held_and_the_hub_still_moves_the_files(d: District, dash: Dashboard) -> None:
    v = d.village
    withdrawn, delivered, undecided, reviewed = (str(d.accept(v)["number"]) for _ in range(4))
    d.sync(v)
    for number in (withdrawn, delivered):
        d.transition(number, "under_review")
        d.transition(number, "approved")
    d.transition(reviewed, "under_review")
    d.sync(v)
    # The forgeries below claim to have seen the district's moves; make sure the village holds them.
    assert {n: a["status"] for n, a in v.by_number().items() if n in (withdrawn, delivered, reviewed)} == {
        withdrawn: "approved",
        delivered: "approved",
        reviewed: "under_review",
    }

    with compromised(v) as st:
        ids = {n: app_id(st, n) for n in (withdrawn, delivered, undecided, reviewed)}
        for number, to in (
            (withdrawn, "withdrawn"),
            (delivered, "delivered"),
            (undecided, "completed"),
            (reviewed, "approved"),
        ):
            rid = ids[number]
            st.write_unchecked("application", rid, {"status": to}, {"status": seen(st, "application", rid)["status"]})
        born_id, born = new_application(st, d.people, INSPECTED, status="completed")
        st.write_unchecked("application", born_id, born, {})
    honest = str(d.accept(v)["number"])  # rides in the same batch as the forgeries
    d.sync(v)

    assert forged_count(d.hub, VILLAGE, lambda f: f.get("status") not in (None, "accepted"), ids.values()) == 0
    assert forged_count(d.hub, VILLAGE, lambda f: f.get("number") == born["number"]) == 0
    assert d.show(honest)["status"] == "accepted"
    truth = {withdrawn: "approved", delivered: "approved", undecided: "accepted", reviewed: "under_review"}
    assert {n: d.show(n)["status"] for n in truth} == truth
    assert run_sanji("hub", "show", d.hub.dir, born["number"]).code == 2
    assert born["number"] not in d.hub.numbers()

    verdicts = {n: only_held(d, ids[n]) for n in truth}
    assert {n: code for n, (code, _) in verdicts.items()} == {
        withdrawn: "illegal_move",
        delivered: "illegal_move",
        undecided: "illegal_move",
        reviewed: "not_authorised",
    }
    assert "已准予许可，不能变更为「撤回」" in verdicts[withdrawn][1]
    assert "已准予许可，不能变更为「送达」" in verdicts[delivered][1]
    assert "只有即办件可以受理后直接办结" in verdicts[undecided][1]
    assert verdicts[reviewed][1].startswith("超出站点权限")
    assert only_held(d, born_id) == (
        "illegal_move",
        "新办件只能以「受理」状态建立，不能直接是「办结」 (a new application starts as accepted, not completed)",
    )

    # The dashboard shows the district's statuses and every held change with its reason.
    assert {n: dashboard_status(dash, n) for n in truth} == truth
    page = dash.get("/quarantine")
    for rid in [*ids.values(), born_id]:
        row = held_for(d.hub, rid)[0]
        assert row.reason in section(page, row.id)
    # The neighbour never hears of any of it.
    assert not set(d.neighbour.numbers()) & {*truth, born["number"], honest}

    # The hub itself still moves the files the village tried to take over (each step checked for effect).
    d.transition(withdrawn, "completed")
    d.transition(delivered, "completed")
    d.transition(delivered, "delivered")
    d.transition(undecided, "under_review")
    d.transition(reviewed, "approved")

    # An operator cannot release the forged withdrawal into a move the workflow lacks: release asks the
    # same question from the record as it stands, so the row can only be rejected.
    row = held_for(d.hub, ids[withdrawn])[0]
    status, page = dash.post(f"/quarantine/{row.id}/release", {"reason": ""}, page="/quarantine")
    assert status == 409 and "只能驳回" in page
    assert held(d.hub, id=row.id)[0].state == "open" and d.show(withdrawn)["status"] == "completed"
    status, page = dash.post(f"/quarantine/{row.id}/reject", {"reason": "村站无权撤回已准予的办件"}, page="/quarantine")
    assert status == 200 and held(d.hub, id=row.id)[0].state == "rejected"
    assert hub_rows(
        d.hub, "SELECT action, reason FROM dash_audit WHERE target=? AND action LIKE 'quarantine%'", (str(row.id),)
    ) == [("quarantine_reject", "村站无权撤回已准予的办件")]
    assert d.show(withdrawn)["status"] == "completed"


def test_a_withdrawal_made_before_the_decision_arrived_still_merges(d: District) -> None:
    """Concurrency stays legal: a village withdraws offline while the district approves; its write
    had not seen the approval, so it is admitted and the fold decides, with a conflict record."""
    v = d.village
    number = str(d.accept(v)["number"])
    d.sync(v)
    d.transition(number, "under_review")
    d.transition(number, "approved")
    moved = ok("node", "transition", v.dir, number, "--to", "withdrawn")  # the village has not synced
    assert moved["status"] == "withdrawn"
    d.sync(v)
    rid = str(d.show(number)["id"])
    assert held_for(d.hub, rid) == []
    assert d.show(number)["status"] == "withdrawn"  # a closing outranks a decision (sync/workflow.py STAGE)
    conflicts = ok("hub", "conflicts", d.hub.dir)["conflicts"]
    assert [c["field"] for c in conflicts if c["number"] == number] == ["status"]


def test_a_lie_about_the_base_cannot_overturn_a_decision_the_village_has_received(d: District) -> None:
    """The same withdrawal written after the village pulled the approval, claiming the base it had
    before. The village holds the approval (its own store shows it) and contradicts it: that is not a
    concurrent write and must be held. Every batch the village's software builds says how far its
    feed it had applied when it wrote its later changes (the batch header's signed horizon), and the
    approval was in what it had applied: held as seen_newer."""
    v = d.village
    number = str(d.accept(v)["number"])
    d.sync(v)
    d.transition(number, "under_review")
    d.transition(number, "approved")
    d.sync(v)
    assert v.by_number()[number]["status"] == "approved"
    with compromised(v) as st:
        rid = app_id(st, number)
        accepted_hlc = min(hlc for hlc, origin, *_ in st.records.load("application", rid).values() if origin == VILLAGE)
        st.write_unchecked("application", rid, {"status": "withdrawn"}, {"status": accepted_hlc})
    d.sync(v)
    assert forged_count(d.hub, VILLAGE, lambda f: f.get("status") == "withdrawn", [rid]) == 0
    assert d.show(number)["status"] == "approved"
    assert [h.code for h in held_for(d.hub, rid)] == ["seen_newer"]


# -- 2. content and namespace -------------------------------------------------------------------------


def test_forged_content_and_a_neighbours_number_are_held(d: District, dash: Dashboard) -> None:
    v, n = d.village, d.neighbour
    theirs = upcoming_number(n)
    forgeries: dict[str, dict[str, object]] = {
        "district_only": {"item": DISTRICT_ONLY},
        "unknown_item": {"item": "360802-9999"},
        "bad_id": {"applicant_id": "123"},
        "bad_phone": {"applicant_phone": "abc"},
        "future_catalogue": {"catalogue_version": 99},
        "neighbours_number": {"number": theirs},
    }
    made: dict[str, tuple[str, dict[str, object]]] = {}
    with compromised(v) as st:
        for what, override in forgeries.items():
            # The district-only item with its own materials and due date, so only the tier is wrong.
            item = DISTRICT_ONLY if what == "district_only" else INSPECTED
            rid, fields = new_application(st, d.people, item, **override)
            st.write_unchecked("application", rid, fields, {})
            made[what] = (rid, fields)
    honest = str(d.accept(v)["number"])
    d.sync(v)

    forged_numbers = {str(f["number"]) for _, f in made.values()}
    assert forged_count(d.hub, VILLAGE, lambda f: f.get("number") in forged_numbers) == 0
    assert d.show(honest)["status"] == "accepted"
    verdicts = {what: only_held(d, rid) for what, (rid, _) in made.items()}
    assert {what: code for what, (code, _) in verdicts.items()} == {
        "district_only": "tier_not_allowed",
        "unknown_item": "unknown_item",
        "bad_id": "id_length",
        "bad_phone": "phone_format",
        "future_catalogue": "unknown_catalogue",
        "neighbours_number": "foreign_number",
    }
    assert verdicts["district_only"][1].startswith("该事项不能在村级站点受理")
    assert verdicts["unknown_item"][1].startswith("事项 360802-9999 不在目录第 1 版中")
    assert verdicts["bad_id"][1].startswith("身份证号码应为18位")
    assert verdicts["bad_phone"][1].startswith("手机号码应为11位数字")
    assert verdicts["future_catalogue"][1].startswith("目录版本 99 区局没有发布过")
    assert verdicts["neighbours_number"][1].startswith(f"办件编号 {theirs} 不在 {VILLAGE} 的编号范围内")
    page = dash.get("/quarantine")
    for rid, _ in made.values():
        row = held_for(d.hub, rid)[0]
        assert row.reason in section(page, row.id)

    # The neighbour's real application with that number arrives and is the only one under it: `hub show`,
    # the dashboard and `hub transition` by that number all reach it.
    real = d.accept(n)
    assert real["number"] == theirs, "the day changed between the forgery and the real acceptance"
    d.sync(n)
    assert hub_rows(d.hub, "SELECT COUNT(*) FROM applications WHERE number=?", (theirs,)) == [(1,)]
    shown = d.show(theirs)
    fake = made["neighbours_number"][1]
    assert (shown["id"], shown["fields"]["station"]) == (real["id"], NEIGHBOUR)
    assert shown["fields"]["applicant_name"] != fake["applicant_name"]
    page = dash.get(f"/applications/{theirs}")
    assert NEIGHBOUR in page and str(fake["applicant_name"]) not in page
    d.transition(theirs, "under_review")
    d.sync(n)
    assert n.by_number()[theirs]["status"] == "under_review"
    assert not set(n.numbers()) & (forged_numbers - {theirs})


# -- 3. report takeover -----------------------------------------------------------------------------------


def inspected(d: District, number: str, inspector: str) -> str:
    """Review and assign an on-site inspection at the hub; the task's id."""
    d.transition(number, "under_review")
    doc = ok("hub", "inspect", d.hub.dir, number, "--inspector", inspector)
    assert doc["inspector"] == inspector
    return str(doc["task"])


def report_of(d: District, number: str) -> dict[str, object] | None:
    (task,) = d.show(number)["inspections"]
    return task["report"]  # type: ignore[no-any-return]


def test_a_field_device_cannot_take_over_another_devices_report(d: District, dash: Dashboard) -> None:
    n, a, b = d.neighbour, d.field_a, d.field_b
    reported, waiting, own = (str(d.accept(n)["number"]) for _ in range(3))
    d.sync(n)
    ids = {num: str(d.show(num)["id"]) for num in (reported, waiting, own)}
    tasks = {
        reported: inspected(d, reported, FIELD_A),
        waiting: inspected(d, waiting, FIELD_A),
        own: inspected(d, own, FIELD_B),
    }
    d.sync(a, b)
    ok("node", "report", a.dir, tasks[reported], "--result", "pass", "--finding", "房屋破旧，家庭收入属实")
    d.sync(a)
    truth = report_of(d, reported)
    assert truth is not None and truth["result"] == "pass"

    forged = {"result": "fail", "findings": "伪造：申请人不符合条件", "recorded_at": iso_from_ms(0)}
    stray = "01890000-0000-7000-8000-00000000beef"  # a report answering no task at all
    with compromised(b) as st:
        forged["recorded_at"] = iso_from_ms(st.clock())
        for num in (reported, waiting):  # A's report rewritten; a report for A's task not yet reported
            st.write_unchecked("report", tasks[num], {"task": tasks[num], "application": ids[num], **forged}, {})
        st.write_unchecked("report", stray, {"task": stray, "application": ids[reported], **forged}, {})
        # A's report ids naming B's own task: B's rights come from the report's own task, not the one named.
        for num in (reported, waiting):
            st.write_unchecked("report", tasks[num], {"task": tasks[own], "application": ids[own], **forged}, {})
    ok("node", "report", b.dir, tasks[own], "--result", "pass", "--finding", "现场核实无误")  # honest, same batch
    d.sync(b)

    assert forged_count(d.hub, FIELD_B, lambda f: f.get("findings") == forged["findings"]) == 0
    assert report_of(d, reported) == truth
    assert report_of(d, waiting) is None
    own_report = report_of(d, own)
    assert own_report is not None and own_report["findings"] == "现场核实无误"
    rows = held(d.hub, origin=FIELD_B)  # B's held changes, in the order B wrote them
    assert [r.code for r in rows] == ["not_authorised"] * 3 + ["fixed_field", "not_authorised"]
    assert all(r.reason.startswith("超出站点权限") for r in rows if r.code == "not_authorised")
    assert rows[3].reason.startswith("「task」写入后不可更改")
    page = dash.get("/quarantine")
    assert all(r.reason in section(page, r.id) for r in rows)

    # A's own report on the task B tried to answer still goes in.
    ok("node", "report", a.dir, tasks[waiting], "--result", "rectify", "--finding", "需补充照片")
    d.sync(a, n)
    later = report_of(d, waiting)
    assert later is not None and (later["result"], later["findings"]) == ("rectify", "需补充照片")
    # The accepting village and the dashboard show A's reports, under A's name.
    for num, report in ((reported, truth), (waiting, later)):
        held_there = station_values(n, "report", tasks[num])
        assert (held_there["result"], held_there["findings"]) == (report["result"], report["findings"])
        page = dash.get(f"/applications/{num}")
        assert f'data-inspector="{FIELD_A}"' in page and forged["findings"] not in page
        assert f'data-result="{report["result"]}"' in page


# -- other ways in: hand-carried files, unsealed batches ----------------------------------------------


def test_files_carried_by_hand_face_the_same_question(d: District, tmp_path: Path) -> None:
    """`hub import` is another way in: the compromised village's batch on a USB stick is judged
    change by change exactly as a push is."""
    v = d.village
    number = str(d.accept(v)["number"])
    d.sync(v)
    with compromised(v) as st:
        rid = app_id(st, number)
        st.write_unchecked(
            "application",
            rid,
            {"status": "approved", "decision": "准予（村站自批）"},
            {"status": seen(st, "application", rid)["status"]},
        )
    honest = str(d.accept(v)["number"])
    ok("node", "export", v.dir, "--out", tmp_path / "usb")
    ok("hub", "import", d.hub.dir, tmp_path / "usb")
    assert d.show(honest)["status"] == "accepted"
    assert d.show(number)["status"] == "accepted" and "decision" not in d.show(number)["fields"]
    assert forged_count(d.hub, VILLAGE, lambda f: "decision" in f, [rid]) == 0
    assert only_held(d, rid)[0] == "not_authorised"
    # The station's next sync finds its batch already taken: nothing is applied or held twice.
    d.sync(v)
    assert len(held_for(d.hub, rid)) == 1 and d.show(number)["status"] == "accepted"


def test_an_unsealed_batch_is_refused_by_a_production_hub(d: District) -> None:
    """Stations seal every batch to the hub's key; one that does not is modified software (or a test),
    and a hub served without --allow-unsealed-for-tests refuses it whole, with the code `unsealed`."""
    v = d.village
    number = str(d.accept(v)["number"])
    st = Station(v.dir)
    try:  # the station's pending changes, signed as usual but not sealed to the hub's key
        epoch, done = st.meta.int("epoch", 1), st.meta.int("batched_seq")
        rows = st.conn.execute(
            "SELECT seq, hlc, entity, rid, fields, base FROM changes WHERE origin=? AND epoch=? AND seq>? ORDER BY seq",
            (st.code, epoch, done),
        ).fetchall()
        wires: list[object] = [[st.code, epoch, r[0], r[1], r[2], r[3], unpack(r[4]), unpack(r[5])] for r in rows]
        frame = build_batch(
            origin=st.code,
            epoch=epoch,
            first_seq=done + 1,
            changes=wires,
            prev=st.meta.bytes("chain", bytes(32)),
            recipient=st.hub_id,
            hlc=st.meta.int("hlc"),
            signing_key=st.keys.sign,
        )
    finally:
        st.close()
    status, body = http(
        "POST", d.hub.url + "/v1/sync/push", pack([frame]), {"Content-Type": "application/vnd.sanji.frames+msgpack"}
    )
    assert status == 403 and b"unsealed" in body
    assert run_sanji("hub", "show", d.hub.dir, number).code == 2
    assert d.hub.status()["last_rejections"][0]["reason"].startswith("unsealed")
    # The same changes, sealed by the station's own sync, go in: only the sealing was wrong.
    d.sync(v)
    assert d.show(number)["status"] == "accepted"
