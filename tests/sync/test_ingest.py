"""Admission of one authentic change at the hub (``sync/ingest.py``).

All station codes, ids and applicant data below are made up for the tests.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.change import Change, change_from_wire, change_to_wire
from sync.fold import Record
from sync.hlc import HUB_QUARANTINE_AHEAD_MS, MAX_STAMP, pack_hlc
from sync.ingest import Admission, Facts, admit, read_change
from sync.model import ENTITIES, MATERIAL_STATES, STATUS_WRITERS, Actor, Kind, RecordContext

HUB_MS = 1_750_000_000_000  # the hub's wall clock in the tests
AHEAD = HUB_QUARANTINE_AHEAD_MS

VILLAGE = Actor("V0101", "village")
OTHER_VILLAGE = Actor("V0202", "village")
TOWNSHIP = Actor("T01", "township")  # V0101's parent
OTHER_TOWNSHIP = Actor("T02", "township")
STREET = Actor("S03", "street")
HUB = Actor("D00", "district")
INSPECTOR = Actor("F0007", "field")
OTHER_DEVICE = Actor("F0008", "field")


def ctx(
    decided_at: str = "district", *, station: str = "V0101", parent: str | None = "T01", inspector: str | None = None
) -> RecordContext:
    return RecordContext(station, parent, decided_at, inspector)


def wire(
    fields: dict[str, object] | None = None,
    *,
    origin: str = "V0101",
    epoch: int = 1,
    seq: int = 7,
    hlc: int | None = None,
    entity: str = "application",
    rec_id: str = "app-test-0001",
    base: dict[str, int] | None = None,
) -> list[object]:
    if fields is None:
        fields = {"station": "V0101", "item": "ITEM-001", "applicant_name": "Applicant 0001", "status": "accepted"}
    return [origin, epoch, seq, pack_hlc(HUB_MS, 0) if hlc is None else hlc, entity, rec_id, fields, base or {}]


SEEN = pack_hlc(HUB_MS - 60_000, 0)  # when the application reached the status the author saw


def change(fields: dict[str, object], *, entity: str = "application", hlc_ms: int = HUB_MS, **kw: object) -> Change:
    if entity == "application" and "status" in fields and "base" not in kw:
        kw["base"] = {"status": SEEN}  # the author saw the application's current status
    return change_from_wire(wire(fields, entity=entity, hlc=pack_hlc(hlc_ms, 3), **kw))  # type: ignore[arg-type]


def existing(status: str) -> Record:
    """An application the hub holds, at ``status`` since SEEN, with its identity card deferred (容缺)."""
    return {
        "status": (SEEN, "V0101", status, 0),
        "kind": (SEEN, "V0101", "promised", 0),
        "m.id_card": (SEEN, "V0101", ["deferred", "2025-06-20"], 0),
    }


def check(
    c: Change, actor: Actor, context: RecordContext | None, *, hub_ms: int = HUB_MS, status: str = "under_review"
) -> Admission:
    """Admission of a change to an existing application (at ``status``) or one of its records."""
    current = existing(status) if c.entity == "application" else {}
    return admit(
        c, actor=actor, context=context, hub_wall_ms=hub_ms, max_ahead_ms=AHEAD, facts=Facts(context, current=current)
    )


# --- read_change ------------------------------------------------------------------------------


def test_valid_change_at_its_batch_position_is_admitted() -> None:
    raw = wire(base={"status": pack_hlc(HUB_MS - 5000, 0)})
    adm = read_change(raw, origin="V0101", epoch=1, seq=7)
    assert adm.admitted
    assert adm.reason == ""
    assert adm.change is not None
    assert adm.change.key == ("V0101", 1, 7)
    assert change_to_wire(adm.change) == raw


@pytest.mark.parametrize(
    ("origin", "epoch", "seq"),
    [("V0202", 1, 7), ("V0101", 2, 7), ("V0101", 1, 8), ("V0101", 1, 6)],
)
def test_change_out_of_its_batch_position_is_held_with_the_change(origin: str, epoch: int, seq: int) -> None:
    adm = read_change(wire(), origin=origin, epoch=epoch, seq=seq)
    assert not adm.admitted
    assert adm.change is not None  # readable, so kept for review rather than lost
    assert adm.change.key == ("V0101", 1, 7)
    assert "does not match its batch position" in adm.reason
    assert str((origin, epoch, seq)) in adm.reason


TOO_LONG = "x" * 4001

UNREADABLE: list[tuple[str, object]] = [
    ("not an array", {"origin": "V0101"}),
    ("none", None),
    ("seven elements", wire()[:7]),
    ("ten elements", [*wire(), "zhangsan", None]),  # 9 is a change with its author (issue 16)
    ("unknown entity", wire(entity="certificate")),
    ("unknown field", wire({"favourite_colour": "blue"})),
    ("unknown task field", wire({"colour": "red"}, entity="task")),
    ("bare material prefix", wire({"m.": ["submitted", ""]})),
    ("no fields", wire({})),
    ("status not text", wire({"status": 3})),
    ("int field given a bool", wire({"catalogue_version": True})),
    ("int field given text", wire({"catalogue_version": "7"})),
    ("int field too large", wire({"catalogue_version": 2**53})),
    ("bool field given an int", wire({"paused": 1})),
    ("text too long", wire({"note": TOO_LONG})),
    ("text with NUL", wire({"note": "a\x00b"})),
    ("material unknown state", wire({"m.id_card": ["lost", ""]})),
    ("material bad due date", wire({"m.id_card": ["deferred", "soon"]})),
    ("material not a pair", wire({"m.id_card": "submitted"})),
    ("gps two numbers", wire({"gps": [30.1, 120.2]}, entity="report")),
    ("gps with a bool", wire({"gps": [30.1, 120.2, True]}, entity="report")),
    ("checklist not bools", wire({"checklist": {"fire exit": "yes"}}, entity="report")),
    ("text list with a number", wire({"photos": ["a.jpg", 3]}, entity="report")),
    ("text list too long", wire({"checklist": ["x"] * 65}, entity="task")),
    ("fields not a map", wire(["status"])),  # type: ignore[arg-type]
    ("base not a map", [*wire()[:7], [1]]),
    ("base names an unwritten field", wire(base={"note": 5})),
    ("base version negative", wire(base={"status": -1})),
    ("base version a bool", wire(base={"status": True})),
    ("origin empty", wire(origin="")),
    ("origin not printable", wire(origin="V01\n01")),
    ("origin too long", wire(origin="V" * 65)),
    ("epoch zero", wire(epoch=0)),
    ("epoch a bool", wire(epoch=True)),
    ("seq zero", wire(seq=0)),
    ("seq negative", wire(seq=-7)),
    ("seq a float", wire(seq=7.0)),  # type: ignore[arg-type]
    ("hlc negative", wire(hlc=-1)),
    ("hlc too large", wire(hlc=2**63)),
    ("entity not text", wire(entity=None)),  # type: ignore[arg-type]
    ("id empty", wire(rec_id="")),
    ("id too long", wire(rec_id="a" * 129)),
]


@pytest.mark.parametrize("raw", [r for _, r in UNREADABLE], ids=[n for n, _ in UNREADABLE])
def test_unreadable_change_gives_a_reason_and_no_change(raw: object) -> None:
    adm = read_change(raw, origin="V0101", epoch=1, seq=7)
    assert adm.change is None
    assert not adm.admitted
    assert "(invalid change: " in adm.reason and adm.code == "invalid"
    assert len(adm.reason.split("invalid change: ", 1)[1]) > 1


def test_largest_stamp_is_readable() -> None:
    adm = read_change(wire(hlc=MAX_STAMP), origin="V0101", epoch=1, seq=7)
    assert adm.admitted


# Values as the strict codec hands them over: str map keys, finite floats.
wire_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(raw=wire_values)
def test_read_change_never_raises_on_arbitrary_values(raw: object) -> None:
    adm = read_change(raw, origin="V0101", epoch=1, seq=7)
    assert isinstance(adm, Admission)
    assert adm.admitted or adm.reason


@settings(max_examples=250, deadline=None)
@given(position=st.integers(min_value=0, max_value=7), value=wire_values)
def test_read_change_never_raises_when_one_element_is_replaced(position: int, value: object) -> None:
    raw = wire()
    raw[position] = value
    adm = read_change(raw, origin="V0101", epoch=1, seq=7)
    assert isinstance(adm, Admission)
    if adm.admitted:
        assert adm.change is not None
        assert change_to_wire(adm.change) == raw
    else:
        assert adm.reason


# Regression: field_spec once called name.startswith() on a non-text name and raised AttributeError.
def test_read_change_with_a_non_text_application_field_name_gives_a_reason() -> None:
    adm = read_change(wire({7: "x"}), origin="V0101", epoch=1, seq=7)  # type: ignore[dict-item]
    assert adm.change is None
    assert "(invalid change: " in adm.reason


def test_non_text_field_name_on_other_entities_is_refused() -> None:
    adm = read_change(wire({7: "x"}, entity="task"), origin="V0101", epoch=1, seq=7)  # type: ignore[dict-item]
    assert adm.change is None
    assert "must be text" in adm.reason


# --- admit: clock -----------------------------------------------------------------------------


def test_clock_far_ahead_is_held_with_a_clock_reason() -> None:
    c = change({"note": "late"}, hlc_ms=HUB_MS + AHEAD + 60_000)
    adm = check(c, VILLAGE, ctx())
    assert not adm.admitted
    assert adm.change == c
    assert "clock ahead" in adm.reason
    assert f"{(AHEAD + 60_000) // 1000} s" in adm.reason
    assert f"limit {AHEAD // 1000} s" in adm.reason


def test_clock_check_applies_even_to_the_hub_and_before_the_context() -> None:
    c = change({"decision": "granted"}, hlc_ms=HUB_MS + AHEAD + 1)
    assert "clock ahead" in check(c, HUB, ctx()).reason
    assert "clock ahead" in check(c, VILLAGE, None).reason


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(min_value=-(10**9), max_value=3 * AHEAD))
def test_only_stamps_beyond_the_limit_are_held_for_the_clock(offset: int) -> None:
    adm = check(change({"note": "n"}, hlc_ms=HUB_MS + offset), VILLAGE, ctx())
    assert adm.admitted is (offset <= AHEAD)
    assert ("clock ahead" in adm.reason) is (offset > AHEAD)


def test_clock_just_at_the_limit_is_admitted() -> None:
    assert check(change({"note": "n"}, hlc_ms=HUB_MS + AHEAD), VILLAGE, ctx()).admitted
    assert not check(change({"note": "n"}, hlc_ms=HUB_MS + AHEAD + 1), VILLAGE, ctx()).admitted


# --- admit: context and rights ----------------------------------------------------------------


def test_unknown_application_is_held_with_a_reason() -> None:
    c = change({"note": "n"}, entity="event", rec_id="evt-0001")
    adm = check(c, VILLAGE, None)
    assert not adm.admitted
    assert adm.change == c
    assert "evt-0001" in adm.reason
    assert adm.code == "unknown_application"


def test_station_writes_its_own_applicant_data_and_acceptance() -> None:
    c = change({"station": "V0101", "status": "accepted", "m.id_card": ["supplemented", ""]})
    adm = check(c, VILLAGE, ctx(), status="supplement_requested")  # 补正 brought back: accepted again
    assert adm.admitted
    assert adm.reason == ""
    # No station command changes the applicant's details once accepted (sync/admission.py CREATION_ONLY).
    renamed = check(change({"applicant_name": "Applicant 0001"}), VILLAGE, ctx())
    assert (renamed.admitted, renamed.code) == (False, "not_a_command")


def test_village_writing_a_decision_is_outside_its_rights() -> None:
    adm = check(change({"decision": "granted"}), VILLAGE, ctx())
    assert not adm.admitted
    assert "outside the station's rights" in adm.reason and adm.code == "not_authorised"
    assert "application.decision" in adm.reason


@pytest.mark.parametrize("status", ["approved", "denied", "under_review", "inspecting"])
def test_village_may_not_set_a_deciding_status(status: str) -> None:
    adm = check(change({"status": status}), VILLAGE, ctx("township"))
    assert not adm.admitted
    assert "outside the station's rights" in adm.reason and adm.code == "not_authorised"
    assert repr(status) in adm.reason


def test_village_may_not_touch_another_station_application() -> None:
    adm = check(change({"applicant_phone": "13800000000"}, origin="V0202"), OTHER_VILLAGE, ctx())
    assert not adm.admitted
    assert "outside the station's rights" in adm.reason
    assert "this station" in adm.reason


@pytest.mark.parametrize("parent", [TOWNSHIP, STREET])
def test_parent_centre_decides_its_own_tier_items_for_its_village(parent: Actor) -> None:
    context = ctx(parent.tier, parent=parent.code)
    c = change({"status": "approved", "decision": "granted", "paused": False}, origin=parent.code)
    assert check(c, parent, context).admitted


def test_parent_township_may_not_decide_a_district_item() -> None:
    adm = check(change({"status": "approved"}, origin="T01"), TOWNSHIP, ctx("district"))
    assert not adm.admitted
    assert "outside the station's rights" in adm.reason


def test_parent_township_may_not_write_the_village_applicant_data() -> None:
    adm = check(change({"applicant_name": "Applicant 0002"}, origin="T01"), TOWNSHIP, ctx("township"))
    assert not adm.admitted


def test_another_township_may_not_decide_the_village_item() -> None:
    adm = check(change({"status": "approved"}, origin="T02"), OTHER_TOWNSHIP, ctx("township"))
    assert not adm.admitted


def test_township_decides_its_own_township_item() -> None:
    context = ctx("township", station="T01", parent=None)
    c = change({"station": "T01", "status": "approved", "decision": "granted"}, origin="T01")
    assert check(c, TOWNSHIP, context).admitted


def test_village_decided_item_still_needs_a_decider_role() -> None:
    # Only township/street centres hold the decider role below the hub.
    assert not check(change({"status": "approved"}), VILLAGE, ctx("village", parent="T01")).admitted


def test_hub_may_write_a_district_decision() -> None:
    c = change({"status": "approved", "decision": "granted", "applicant_name": "Applicant 0003"}, origin="D00")
    assert check(c, HUB, ctx("district")).admitted


def test_inspector_may_write_its_task_report() -> None:
    c = change(
        {
            "task": "task-0001",
            "application": "app-test-0001",
            "result": "pass",
            "findings": "ok",
            "recorded_at": "2025-06-15T10:00:00+08:00",
            "gps": [30.25, 120.16, 8.5],
            "checklist": {"fire exit": True},
            "photos": ["p1.jpg"],
        },
        entity="report",
        origin="F0007",
        rec_id="task-0001",
    )
    task = {"inspector": "F0007", "application": "app-test-0001", "status": "assigned"}
    facts = Facts(ctx(inspector="F0007"), task=task)
    assert admit(
        c, actor=INSPECTOR, context=facts.context, hub_wall_ms=HUB_MS, max_ahead_ms=AHEAD, facts=facts
    ).admitted
    done = change({"status": "done"}, entity="task", origin="F0007", rec_id="task-0001")
    facts = Facts(ctx(inspector="F0007"), current={"status": (SEEN, "T01", "assigned", 0)})
    assert admit(
        done, actor=INSPECTOR, context=facts.context, hub_wall_ms=HUB_MS, max_ahead_ms=AHEAD, facts=facts
    ).admitted


def test_another_field_device_may_not_write_the_report() -> None:
    c = change({"result": "fail"}, entity="report", origin="F0008", rec_id="rep-0001")
    adm = check(c, OTHER_DEVICE, ctx(inspector="F0007"))
    assert not adm.admitted
    assert "report.result" in adm.reason


def test_inspector_may_not_decide_the_application() -> None:
    assert not check(change({"decision": "granted"}, origin="F0007"), INSPECTOR, ctx(inspector="F0007")).admitted


def test_report_with_no_assigned_inspector_is_refused_to_a_field_device() -> None:
    c = change({"result": "pass"}, entity="report", origin="F0007")
    assert not check(c, INSPECTOR, ctx(inspector=None)).admitted


def test_admission_without_a_change_is_never_admitted() -> None:
    assert not Admission(None, "").admitted
    assert not Admission(None, "invalid change: x").admitted


# --- admit: properties over generated changes -------------------------------------------------

text = st.text(alphabet="abcxyz0123 -.", max_size=16)
VALUES = {
    Kind.TEXT: text,
    Kind.INT: st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    Kind.BOOL: st.booleans(),
    Kind.MATERIAL: st.tuples(st.sampled_from(MATERIAL_STATES), st.sampled_from(["", "2025-07-01"])).map(list),
    Kind.TEXT_LIST: st.lists(text, max_size=4),
    Kind.GPS: st.lists(st.floats(-180, 180), min_size=3, max_size=3),
    Kind.CHECKLIST: st.dictionaries(text, st.booleans(), max_size=4),
    Kind.SCORE: st.integers(min_value=1, max_value=5),
}


@st.composite
def valid_changes(draw: st.DrawFn) -> Change:
    entity = draw(st.sampled_from(sorted(ENTITIES)))
    table = dict(ENTITIES[entity])
    names = draw(st.lists(st.sampled_from(sorted(table)), min_size=1, max_size=min(4, len(table)), unique=True))
    fields: dict[str, object] = {}
    for name in names:
        if entity == "application" and name == "status":
            fields[name] = draw(st.sampled_from(sorted(STATUS_WRITERS)))
        else:
            fields[name] = draw(VALUES[table[name].kind])
    if entity == "application" and draw(st.booleans()):
        fields["m." + draw(st.sampled_from(["id_card", "household_register", "photo"]))] = draw(VALUES[Kind.MATERIAL])
    ms = HUB_MS + draw(st.integers(min_value=-(10**8), max_value=AHEAD))
    adm = read_change(wire(fields, entity=entity, hlc=pack_hlc(ms, 0)), origin="V0101", epoch=1, seq=7)
    assert adm.admitted, adm.reason  # generated changes are all readable
    assert adm.change is not None
    return adm.change


contexts = st.builds(
    RecordContext,
    station=st.sampled_from(["V0101", "V0202", "T01"]),
    station_parent=st.sampled_from([None, "T01", "S03"]),
    decided_at=st.sampled_from(["district", "township", "street", "village"]),
    inspector=st.sampled_from([None, "F0007"]),
)


@settings(max_examples=100, deadline=None)
@given(c=valid_changes(), context=contexts)
def test_hub_may_write_any_field_outside_the_workflow(c: Change, context: RecordContext) -> None:
    # The hub's authority covers every field; the status alone also follows the workflow table
    # (tests/sync/test_admission.py), and a material received (补交) follows sync/supplement.py
    # (tests/sync/test_supplement.py), so the generated statuses and receipts are left out here.
    def ruled(k: str, v: object) -> bool:
        return k == "status" or (k.startswith("m.") and isinstance(v, list) and v[:1] == ["supplemented"])

    if c.entity == "application" and any(ruled(k, v) for k, v in c.fields.items()):
        c = Change(
            c.origin,
            c.epoch,
            c.seq,
            c.hlc,
            c.entity,
            c.id,
            {k: v for k, v in c.fields.items() if not ruled(k, v)} or {"note": "n"},
            {},
        )
    assert check(c, HUB, context) == Admission(c, "")


@settings(max_examples=100, deadline=None)
@given(c=valid_changes(), context=contexts)
def test_a_station_with_no_part_in_the_record_may_write_nothing(c: Change, context: RecordContext) -> None:
    stranger = Actor("V0909", "village")
    adm = check(c, stranger, context)
    assert not adm.admitted
    assert adm.change == c
    assert "outside the station's rights" in adm.reason and adm.code == "not_authorised"
