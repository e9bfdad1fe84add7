"""The fold depends only on the set of changes: any order, any duplication, the same state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.change import Change, change_from_wire, change_to_wire
from sync.fold import apply_change, conflicts_of, fold, record_digest, values, versions
from sync.model import AUTHORITY

TIERS = {"360802": "district", "360802-T01": "township", "360802-T01-01": "village", "360802-T01-02": "village"}
ORIGINS = sorted(TIERS)


def authority(origin: str) -> int:
    return AUTHORITY[TIERS.get(origin, "field")]


STATUSES = [
    "accepted",
    "supplement_requested",
    "under_review",
    "inspecting",
    "approved",
    "denied",
    "not_accepted",
    "withdrawn",
    "completed",
    "delivered",
]
field_values = {
    "status": st.sampled_from(STATUSES),
    "note": st.text(max_size=5),
    "due_date": st.sampled_from(["2026-03-01", "2026-03-02", ""]),
    "m.居民身份证": st.tuples(
        st.sampled_from(["submitted", "deferred", "supplemented"]), st.sampled_from(["", "2026-03-09"])
    ).map(list),
    "paused": st.booleans(),
}


@st.composite
def changes(draw: st.DrawFn) -> list[Change]:
    n = draw(st.integers(1, 14))
    out = []
    seqs = dict.fromkeys(ORIGINS, 0)
    for _ in range(n):
        origin = draw(st.sampled_from(ORIGINS))
        seqs[origin] += 1
        names = draw(st.sets(st.sampled_from(sorted(field_values)), min_size=1, max_size=3))
        fields = {name: draw(field_values[name]) for name in names}
        base = {name: draw(st.integers(0, 40)) for name in names if draw(st.booleans())}
        rec = draw(st.sampled_from(["a1", "a2"]))
        hlc = draw(st.integers(1, 40))
        out.append(Change(origin, 1, seqs[origin], hlc, "application", rec, fields, base))
    return out


def digest(state: dict) -> dict:
    return {key: record_digest(key[0], key[1], rec) for key, rec in state.items()}


@settings(max_examples=2000, deadline=None)
@given(changes(), st.randoms(use_true_random=False), st.integers(0, 3))
def test_fold_is_order_and_duplicate_independent(cs: list[Change], rnd, dup: int) -> None:
    shuffled = list(cs) + [cs[i % len(cs)] for i in range(dup)]
    rnd.shuffle(shuffled)
    assert digest(fold(cs, authority)) == digest(fold(shuffled, authority))
    assert conflicts_of(cs, authority).keys() == conflicts_of(shuffled, authority).keys()


@settings(max_examples=300, deadline=None)
@given(changes())
def test_terminal_status_is_never_overwritten_by_a_non_terminal_one(cs: list[Change]) -> None:
    state = fold(cs, authority)
    for key, rec in state.items():
        if "status" not in rec:
            continue
        final = values(rec)["status"]
        written = {c.fields["status"] for c in cs if "status" in c.fields and (c.entity, c.id) == key}
        terminal = {"not_accepted", "withdrawn", "completed", "delivered"}
        if written & terminal and final not in terminal:
            raise AssertionError(f"{final} overwrote a terminal status")


def test_concurrent_edits_from_two_origins_make_one_conflict_with_both_values() -> None:
    a = Change("360802-T01-01", 1, 1, 10, "application", "x", {"note": "village"}, {})
    b = Change("360802", 1, 1, 11, "application", "x", {"note": "hub"}, {})
    rec, c1 = apply_change({}, a, authority)
    rec, c2 = apply_change(rec, b, authority)
    assert values(rec)["note"] == "hub"
    assert c1 == [] and len(c2) == 1
    assert c2[0].winner[2] == "hub" and c2[0].loser[2] == "village"
    assert "last writer wins" in c2[0].rule


def test_a_sequential_overwrite_is_not_a_conflict() -> None:
    a = Change("360802-T01-01", 1, 1, 10, "application", "x", {"note": "v1"}, {})
    b = Change("360802", 1, 1, 11, "application", "x", {"note": "v2"}, {"note": 10})
    assert conflicts_of([a, b], authority) == {}
    rec = fold([a, b], authority)[("application", "x")]
    assert versions(rec)["note"] == 11


def test_two_closings_resolve_by_authority_not_by_time() -> None:
    hub = Change("360802", 1, 1, 10, "application", "x", {"status": "completed"}, {})
    village = Change("360802-T01-01", 1, 5, 99, "application", "x", {"status": "withdrawn"}, {})
    rec = fold([village, hub], authority)[("application", "x")]
    assert values(rec)["status"] == "completed"
    (conflict,) = conflicts_of([hub, village], authority).values()
    assert "authority" in conflict.rule
    assert conflict.loser[2] == "withdrawn"


def test_a_closing_outranks_a_concurrent_decision_and_the_conflict_is_kept() -> None:
    hub = Change("360802", 1, 1, 120, "application", "x", {"status": "approved"}, {"status": 50})
    village = Change("360802-T01-01", 1, 5, 100, "application", "x", {"status": "withdrawn"}, {"status": 50})
    rec = fold([hub, village], authority)[("application", "x")]
    assert values(rec)["status"] == "withdrawn"
    assert len(conflicts_of([hub, village], authority)) == 1


def test_wire_round_trip_and_refusals() -> None:
    c = Change("360802-T01-01", 1, 3, 77, "application", "x", {"m.户口簿": ["deferred", "2026-03-09"]}, {})
    assert change_from_wire(change_to_wire(c)) == c
    import pytest

    from sync.model import ModelError

    for bad in (
        ["o", 1, 1, 1, "nope", "x", {"a": 1}, {}],
        ["o", 1, 1, 1, "application", "x", {"drop_table": "x"}, {}],
        ["o", 1, 1, 1, "application", "x", {"status": 5}, {}],
        ["o", 0, 1, 1, "application", "x", {"note": "n"}, {}],
        ["o", 1, 1, 1, "application", "x", {"note": "n"}, {"due_date": 1}],
        ["o", 1, 1, 1, "application", "x", {}, {}],
        "not a list",
    ):
        with pytest.raises(ModelError):
            change_from_wire(bad)
