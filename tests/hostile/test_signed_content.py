"""Genuine signatures over hostile content: the changes an enrolled station (compromised, buggy, or
restored from an old backup) can put in a batch, and the free text it can put in codes and queries.

Every batch here is correctly signed and sealed by an enrolled station, chained at the position the hub
expects. Its changes are a random mix of good ones (new applications, notes, events, ratings on the
station's own records, with SQL-looking strings in every free-text field) and bad ones (entities and
fields that do not exist, values of the wrong shape, wrong positions, clocks far ahead, writes outside
the station's rights). The hub must apply exactly the good ones, quarantine exactly the bad ones with a
reason, in one transaction with the batch record and the cursor, store every string verbatim (never
execute it), and keep serving. SQL-looking station codes, numbers, names and query values are refused
or inert. Whole batches that cannot be read, replays, gaps and forks are in ``test_signed_batches``;
signed pull, blob and reconcile requests in ``test_signed_requests``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub import enrolment
from hub.operations import applications as list_applications
from hub.operations import status
from replica.errors import Refused
from sync.numbering import is_station_code

from .harness import (
    SQL_STRINGS,
    TALLY,
    TOWNSHIP,
    Sender,
    application_fields,
    counts,
    hostile,
    snapshot_unchanged,
    table_names,
)
from .helpers import MSGPACK_INTS, V1, V2, World

ITEMS = ("360802-0001", "360802-0004", "360802-0009", "360802-0012")
TEN_MINUTES_MS = 10 * 60 * 1000


# -- what a change can be -------------------------------------------------------------------------------

FREE_TEXT = st.one_of(
    st.sampled_from(SQL_STRINGS),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=120
    ),
    st.builds(lambda a, b: a + b, st.sampled_from(SQL_STRINGS), st.text(max_size=20).filter(lambda t: "\x00" not in t)),
)

Build = Callable[[int], list[object]]  # seq -> wire change


@dataclass
class Spec:
    """One change of a batch: how to make it at its seq, and what the hub must do with it."""

    kind: str
    build: Build
    good: bool
    new_app: str = ""  # id of the application a good change creates
    fields: dict[str, object] | None = None  # for a new application: what must be stored, verbatim


@st.composite
def good_change(draw: st.DrawFn, w: World, sender: Sender) -> Spec:
    s = w.served
    kind = draw(st.sampled_from(["new application", "note", "event", "rating"]))
    own = w.own_app[sender.code]
    if kind == "new application":
        app_id = sender.fresh_id()
        text = draw(FREE_TEXT)
        # Free text goes where the accept command takes free text; the item, number, dates and materials
        # must be what the command would write, or the hub holds the application (sync/admission.py).
        fields = application_fields(sender, w.next_serial(), text=text, item=draw(st.sampled_from(ITEMS)))
        fields["theme"] = draw(FREE_TEXT)[:20]
        return Spec(kind, lambda seq: s.wire(sender, seq, "application", app_id, fields), True, app_id, fields)
    if kind == "note":
        note = draw(FREE_TEXT)
        return Spec(kind, lambda seq: s.wire(sender, seq, "application", own, {"note": note}), True)
    rec_id = sender.fresh_id(kind)
    if kind == "event":
        fields = {"application": own, "action": draw(FREE_TEXT), "actor": draw(FREE_TEXT), "note": draw(FREE_TEXT)}
        return Spec(kind, lambda seq: s.wire(sender, seq, "event", rec_id, fields), True)
    fields = {"application": own, "score": draw(st.integers(1, 5)), "comment": draw(FREE_TEXT)}
    return Spec(kind, lambda seq: s.wire(sender, seq, "rating", rec_id, fields), True)


WRONG_SHAPES: dict[str, list[object]] = {
    "catalogue_version": ["1", True, 1.5, 2**53, None, [1]],
    "paused": ["yes", 0, 1, None],
    "status": [5, None, ["accepted"], {"s": 1}],
    "applicant_name": [1, None, b"bytes", ["x"], "x" * 4001, "nul\x00byte"],
    "m.居民身份证": ["submitted", ["lost", ""], ["deferred", "2026-3-9"], ["submitted"], [1, ""], None],
    "note": [{"a": "b"}, 3, False],
}


@st.composite
def bad_change(draw: st.DrawFn, w: World, sender: Sender) -> Spec:
    s = w.served
    own = w.own_app[sender.code]
    other = w.own_app[V2 if sender.code != V2 else V1]
    kind = draw(
        st.sampled_from(
            [
                "unknown entity",
                "unknown field",
                "wrong shape",
                "no fields",
                "base without field",
                "bad base version",
                "wrong arity",
                "not a list",
                "seq elsewhere",
                "other origin",
                "other epoch",
                "bad id",
                "bad hlc",
                "clock ahead",
                "status beyond rights",
                "decision beyond rights",
                "someone else's application",
                "claims another station",
                "orphan event",
                "orphan note",
                "material never deferred",
            ]
        )
    )
    fresh = sender.fresh_id("bad")

    def wire(
        entity: str, rec_id: str, fields: dict[str, object], base: dict[str, object] | None = None, **kw: Any
    ) -> Build:
        return lambda seq: s.wire(sender, seq, entity, rec_id, fields, base, **kw)

    build: Build
    if kind == "unknown entity":
        entity = draw(
            st.one_of(
                st.sampled_from(["applications", "user", "operator", "", "APPLICATION", "stations"]),
                st.sampled_from(SQL_STRINGS),
            )
        )
        build = wire(entity, fresh, {"note": "x"})
    elif kind == "unknown field":
        name = draw(
            st.one_of(
                st.sampled_from(["password", "m.", "sign_pub", "revoked", "Status", "note "]),
                st.sampled_from(SQL_STRINGS),
            )
        )
        build = wire("application", own, {name: "x"})
    elif kind == "wrong shape":
        field = draw(st.sampled_from(sorted(WRONG_SHAPES)))
        build = wire("application", own, {field: draw(st.sampled_from(WRONG_SHAPES[field]))})
    elif kind == "no fields":
        build = wire("application", own, {})
    elif kind == "base without field":
        build = wire("application", own, {"note": "x"}, {"address": 1})
    elif kind == "bad base version":
        build = wire("application", own, {"note": "x"}, {"note": draw(st.sampled_from([-1, "1", 2**63, None, 1.5]))})
    elif kind == "wrong arity":
        n = draw(st.sampled_from([0, 1, 7, 9, 20]))
        build = lambda seq: s.wire(sender, seq, "application", own, {"note": "x"})[:n] + [None] * max(0, n - 8)  # noqa: E731
    elif kind == "not a list":
        value = draw(
            st.one_of(
                st.none(),
                MSGPACK_INTS,
                st.text(max_size=20),
                st.binary(max_size=20),
                st.dictionaries(st.text(max_size=5), MSGPACK_INTS, max_size=3),
            )
        )
        build = lambda seq: value  # type: ignore[assignment,return-value]  # noqa: E731
    elif kind == "seq elsewhere":
        shift = draw(st.sampled_from([-1, 1, 1000, 2**40]))
        build = lambda seq: s.wire(  # noqa: E731
            sender,
            seq + shift if seq + shift >= 1 else seq + 1,
            "application",
            own,
            {"note": "x"},
        )
    elif kind == "other origin":
        build = lambda seq: [  # noqa: E731
            V2 if sender.code != V2 else V1,
            sender.epoch,
            seq,
            s.stamp(),
            "application",
            own,
            {"note": "x"},
            {},
        ]
    elif kind == "other epoch":
        build = lambda seq: [sender.code, sender.epoch + 1, seq, s.stamp(), "application", own, {"note": "x"}, {}]  # noqa: E731
    elif kind == "bad id":
        rec = draw(st.sampled_from(["", "x" * 129, "line\nbreak", "tab\there", "\x00", 5, None]))
        build = lambda seq: [sender.code, sender.epoch, seq, s.stamp(), "application", rec, {"note": "x"}, {}]  # noqa: E731
    elif kind == "bad hlc":
        hlc = draw(st.sampled_from([-1, "now", 2**63, None, 1.5]))
        build = lambda seq: [sender.code, sender.epoch, seq, hlc, "application", own, {"note": "x"}, {}]  # noqa: E731
    elif kind == "clock ahead":
        ahead = draw(st.integers(TEN_MINUTES_MS + 60_000, 10 * 365 * 86_400_000))
        build = wire("application", own, {"note": "from the future"}, hlc=s.stamp(ahead))
    elif kind == "status beyond rights" and sender.tier == "village":
        build = wire(
            "application", own, {"status": draw(st.sampled_from(["approved", "denied", "under_review", "inspecting"]))}
        )
    elif kind == "decision beyond rights" and sender.tier == "village":
        build = wire("application", own, {"decision": "准予", "paused": True})
    elif kind == "someone else's application":
        # (a township may write a note on its village's application as the decider: not a violation)
        build = wire("application", other, {draw(st.sampled_from(["applicant_name", "address", "number"])): "x"})
    elif kind == "claims another station":
        fields = application_fields(w.v2 if sender.code != V2 else w.v1, w.next_serial())
        build = wire("application", fresh, fields)
    elif kind in ("status beyond rights", "decision beyond rights"):  # the township decides its own items
        build = wire("application", own, {"decision": "准予", "status": "approved"}, hlc=s.stamp(2 * TEN_MINUTES_MS))
    elif kind == "material never deferred":
        # 补交材料 is only for a material deferred at acceptance, and not on a closed file (sync/supplement.py).
        build = wire("application", own, {f"m.{draw(FREE_TEXT)}": ["supplemented", ""]})
    elif kind == "orphan event":
        build = wire("event", fresh, {"application": f"nobody-{fresh}", "action": "accept"})
    else:
        build = wire("application", f"nobody-{fresh}", {"note": "no such application"})
    return Spec(kind, build, False)


@st.composite
def mixed_batch(draw: st.DrawFn, w: World) -> tuple[Sender, list[Spec], bool]:
    sender = draw(st.sampled_from([w.v1, w.v2, w.township]))
    n = draw(st.integers(1, 8))
    specs = [draw(good_change(w, sender)) if draw(st.booleans()) else draw(bad_change(w, sender)) for _ in range(n)]
    return sender, specs, draw(st.booleans())


def push_specs(w: World, sender: Sender, specs: list[Spec], sealed: bool = True) -> tuple[int, list[dict[str, Any]]]:
    s = w.served
    seq, _ = s.position(sender)
    frame = s.batch(sender, [spec.build(seq + i) for i, spec in enumerate(specs)], sealed=sealed)
    reply = s.push([frame])
    assert reply.status == 200, f"{[x.kind for x in specs]}: {reply.status} {reply.body[:300]!r}"
    return seq, s.open_acks(sender, reply)


@hostile(500)
@given(data=st.data())
def test_good_changes_apply_bad_ones_are_quarantined_with_a_reason_in_one_transaction(
    world: World, data: st.DataObject
) -> None:
    TALLY.add("signed: batches mixing good changes and unknown entities/fields, wrong shapes, rights, clocks")
    s = world.served
    sender, specs, sealed = data.draw(mixed_batch(world), label="batch")
    tables = table_names(s.hub)
    before = counts(s.hub)
    q_mark = s.last_quarantine_id()
    seq, acks = push_specs(world, sender, specs, sealed)
    good = [i for i, spec in enumerate(specs) if spec.good]
    bad = [i for i, spec in enumerate(specs) if not spec.good]
    kinds = [x.kind for x in specs]
    assert len(acks) == 1
    ack = acks[0]
    assert ack["result"] == ("quarantined" if bad else "applied"), (kinds, ack)
    assert (ack["applied"], ack["quarantined"]) == (len(good), len(bad)), (kinds, ack)
    after = counts(s.hub)
    assert after["changes"] == before["changes"] + len(good), kinds
    assert after["quarantine"] == before["quarantine"] + len(bad), kinds
    assert after["applications"] == before["applications"] + sum(1 for x in specs if x.new_app), kinds
    assert after["batches"] == before["batches"] + 1 and after["rejected"] == before["rejected"]
    held = s.quarantine_since(q_mark)
    assert [row[2] for row in held] == [seq + i for i in bad], (kinds, held)
    assert all(row[1] == sender.code and row[3] == 0 and row[4].strip() for row in held), held
    assert s.position(sender)[0] == seq + len(specs), "the cursor moved past the whole batch"
    for i in good:  # applied, and logged under the seq it came with
        assert s.hub.records.has_change(sender.code, sender.epoch, seq + i), (kinds, i)
    for spec in specs:
        if spec.new_app:  # every string stored verbatim, in the merged record and in the projection
            assert spec.fields is not None
            assert s.hub.records.values("application", spec.new_app) == spec.fields
            row = s.hub.store.conn.execute(
                "SELECT number, item, applicant_name, address, note, theme FROM applications WHERE id=?",
                (spec.new_app,),
            ).fetchone()
            f = spec.fields
            assert tuple(row) == (f["number"], f["item"], f["applicant_name"], f["address"], f["note"], f["theme"])
    assert table_names(s.hub) == tables, "a table appeared or disappeared"
    shown = status(s.hub)
    assert shown["quarantined"] == s.hub.store.count("quarantine", "state='open'")
    assert s.healthy()


@hostile(250)
@given(
    text=FREE_TEXT,
    where=st.sampled_from(
        ["station query", "number query", "register code", "register parent", "register name", "pull query"]
    ),
)
def test_sql_in_codes_and_queries_is_refused_or_inert(world: World, text: str, where: str) -> None:
    s = world.served
    tables = table_names(s.hub)
    before = counts(s.hub)
    if where != "register code" or not is_station_code(text):
        TALLY.add("signed: SQL-looking station codes and query values")
    if where == "station query":
        assert list_applications(s.hub, station=text) == []
    elif where == "number query":
        with pytest.raises(Refused):
            from hub.operations import find_application

            find_application(s.hub, text + "-nonexistent")
    elif where == "register code":
        assume(not is_station_code(text))  # (a plain code such as "A1" is a valid station code)
        with pytest.raises(Refused):
            enrolment.register(s.hub, station=text, name="x", tier="village", parent=TOWNSHIP)
    elif where == "register parent":
        with pytest.raises(Refused):
            enrolment.register(s.hub, station=f"{TOWNSHIP}-88", name="x", tier="village", parent=text)
    elif where == "register name":
        # A name is free text: kept verbatim. Registering twice just renames; nothing else moves.
        enrolment.register(s.hub, station=f"{TOWNSHIP}-77", name=text, tier="village", parent=TOWNSHIP)
        assert s.hub.store.station(f"{TOWNSHIP}-77").name == text  # type: ignore[union-attr]
        before["stations"] = counts(s.hub)["stations"]
        before["tokens"] += 1
    else:
        header = s.signed_header(
            world.v1, "pull", {"after": 0, "at_ms": s.hub.clock(), "pending": 0, "catalogue_version": 1}
        )
        reply = s.request("GET", "/v1/sync/pull", headers=header, params={"station": text})
        assert reply.status == (200 if text == V1 else 403), reply.body[:200]
    assert table_names(s.hub) == tables
    assert not snapshot_unchanged(before, counts(s.hub))
