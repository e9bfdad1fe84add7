"""Genuine signatures over hostile content: what an enrolled station (compromised, buggy, or restored from
an old backup) can send.

Every batch here is correctly signed and sealed by an enrolled station, chained at the position the hub
expects. Its changes are a random mix of good ones (new applications, notes, events, ratings on the
station's own records, with SQL-looking strings in every free-text field) and bad ones (entities and
fields that do not exist, values of the wrong shape, wrong positions, clocks far ahead, writes outside
the station's rights). The hub must apply exactly the good ones, quarantine exactly the bad ones with a
reason, in one transaction with the batch record and the cursor, store every string verbatim (never
execute it), and keep serving. Bodies that cannot be read at all are held whole; replays, gaps and forks
change nothing; signed pull, blob and reconcile requests with invalid content get a 4xx.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub import enrollment
from hub.operations import applications as list_applications
from hub.operations import status
from protocol.blob import is_sha256_hex
from protocol.codec import pack
from replica.errors import Refused
from sync.numbering import is_station_code

from .harness import (
    SQL_STRINGS,
    TALLY,
    TOWNSHIP,
    Sender,
    Served,
    application_fields,
    batch_header,
    counts,
    forge_frame,
    hostile,
    seal_body,
    snapshot_unchanged,
    table_names,
)

V1, V2 = f"{TOWNSHIP}-01", f"{TOWNSHIP}-02"
ITEMS = ("360802-0001", "360802-0004", "360802-0009", "360802-0012")
TEN_MINUTES_MS = 10 * 60 * 1000


@dataclass
class World:
    served: Served
    township: Sender
    v1: Sender
    v2: Sender
    own_app: dict[str, str]  # station code -> id of an application it created
    serial: int = 0

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial


@pytest.fixture(scope="module")
def world(served: Served) -> World:
    township = served.enrol(TOWNSHIP, "township", seed=11)
    v1 = served.enrol(V1, "village", TOWNSHIP, seed=12)
    v2 = served.enrol(V2, "village", TOWNSHIP, seed=13)
    w = World(served, township, v1, v2, {})
    for sender in (township, v1, v2):
        app_id = sender.fresh_id()
        seq, _ = served.position(sender)
        # Items decided at the district, so that no station here is the decider of its own application.
        fields = application_fields(sender, w.next_serial(), item="360802-0004")
        reply = served.push([served.batch(sender, [served.wire(sender, seq, "application", app_id, fields)])])
        assert reply.status == 200 and served.open_acks(sender, reply)[0]["result"] == "applied"
        w.own_app[sender.code] = app_id
    return w


# -- what a change can be -------------------------------------------------------------------------------

FREE_TEXT = st.one_of(
    st.sampled_from(SQL_STRINGS),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
            max_size=120),
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
    kind = draw(st.sampled_from(["new application", "note", "event", "rating", "material"]))
    own = w.own_app[sender.code]
    if kind == "new application":
        app_id = sender.fresh_id()
        text = draw(FREE_TEXT)
        fields = application_fields(sender, w.next_serial(), text=text, item=draw(st.sampled_from((*ITEMS, text))))
        fields[f"m.{draw(FREE_TEXT)}"] = ["deferred", "2026-03-09"]  # material names are free text too
        fields["theme"] = draw(FREE_TEXT)
        return Spec(kind, lambda seq: s.wire(sender, seq, "application", app_id, fields), True, app_id, fields)
    if kind == "note":
        note = draw(FREE_TEXT)
        return Spec(kind, lambda seq: s.wire(sender, seq, "application", own, {"note": note}), True)
    if kind == "material":
        name = draw(FREE_TEXT)
        return Spec(kind, lambda seq: s.wire(sender, seq, "application", own, {f"m.{name}": ["supplemented", ""]}),
                    True)
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
    kind = draw(st.sampled_from([
        "unknown entity", "unknown field", "wrong shape", "no fields", "base without field", "bad base version",
        "wrong arity", "not a list", "seq elsewhere", "other origin", "other epoch", "bad id", "bad hlc",
        "clock ahead", "status beyond rights", "decision beyond rights", "someone else's application",
        "claims another station", "orphan event", "orphan note",
    ]))
    fresh = sender.fresh_id("bad")

    def wire(entity: str, rec_id: str, fields: dict[str, object], base: dict[str, object] | None = None,
             **kw: Any) -> Build:
        return lambda seq: s.wire(sender, seq, entity, rec_id, fields, base, **kw)

    build: Build
    if kind == "unknown entity":
        entity = draw(st.one_of(st.sampled_from(["applications", "user", "operator", "", "APPLICATION", "stations"]),
                                st.sampled_from(SQL_STRINGS)))
        build = wire(entity, fresh, {"note": "x"})
    elif kind == "unknown field":
        name = draw(st.one_of(st.sampled_from(["password", "m.", "sign_pub", "revoked", "Status", "note "]),
                              st.sampled_from(SQL_STRINGS)))
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
        value = draw(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.binary(max_size=20),
                               st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))
        build = lambda seq: value  # type: ignore[assignment,return-value]  # noqa: E731
    elif kind == "seq elsewhere":
        shift = draw(st.sampled_from([-1, 1, 1000, 2**40]))
        build = lambda seq: s.wire(sender, seq + shift if seq + shift >= 1 else seq + 1,  # noqa: E731
                                   "application", own, {"note": "x"})
    elif kind == "other origin":
        build = lambda seq: [V2 if sender.code != V2 else V1, sender.epoch, seq, s.stamp(), "application", own,  # noqa: E731
                             {"note": "x"}, {}]
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
        build = wire("application", own, {"status": draw(st.sampled_from(["approved", "denied", "under_review",
                                                                        "inspecting"]))})
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
                (spec.new_app,)).fetchone()
            f = spec.fields
            assert tuple(row) == (f["number"], f["item"], f["applicant_name"], f["address"], f["note"], f["theme"])
    assert table_names(s.hub) == tables, "a table appeared or disappeared"
    shown = status(s.hub)
    assert shown["quarantined"] == s.hub.store.count("quarantine", "state='open'")
    assert s.healthy()


@hostile(250)
@given(text=FREE_TEXT, where=st.sampled_from(["station query", "number query", "register code", "register parent",
                                               "register name", "pull query"]))
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
            enrollment.register(s.hub, station=text, name="x", tier="village", parent=TOWNSHIP)
    elif where == "register parent":
        with pytest.raises(Refused):
            enrollment.register(s.hub, station=f"{TOWNSHIP}-88", name="x", tier="village", parent=text)
    elif where == "register name":
        # A name is free text: kept verbatim. Registering twice just renames; nothing else moves.
        enrollment.register(s.hub, station=f"{TOWNSHIP}-77", name=text, tier="village", parent=TOWNSHIP)
        assert s.hub.store.station(f"{TOWNSHIP}-77").name == text  # type: ignore[union-attr]
        before["stations"] = counts(s.hub)["stations"]
        before["tokens"] += 1
    else:
        header = s.signed_header(world.v1, "pull", {"after": 0, "at_ms": s.hub.clock(), "pending": 0,
                                                     "catalogue_version": 1})
        reply = s.request("GET", "/v1/sync/pull", headers=header, params={"station": text})
        assert reply.status == (200 if text == V1 else 403), reply.body[:200]
    assert table_names(s.hub) == tables
    assert not snapshot_unchanged(before, counts(s.hub))


# -- bodies that cannot be read ----------------------------------------------------------------------------


@st.composite
def unreadable_body(draw: st.DrawFn) -> tuple[bytes, int, str]:
    """(plain body, count the header claims, what is wrong)."""
    kind = draw(st.sampled_from(["count too high", "count too low", "not a list", "not zlib", "not msgpack",
                                 "zlib bomb", "zlib trailing", "ext type", "too deep", "garbage ciphertext"]))
    count = draw(st.integers(1, 6))
    change = [None]
    if kind == "count too high":
        return zlib.compress(pack(change * (count - 1))), count, kind
    if kind == "count too low":
        return zlib.compress(pack(change * (count + draw(st.integers(1, 5))))), count, kind
    if kind == "not a list":
        ints = st.integers(-(2**63), 2**64 - 1)
        return zlib.compress(pack(draw(st.one_of(st.none(), ints, st.text(max_size=10),
                                                 st.dictionaries(st.text(max_size=4), ints))))), count, kind
    if kind == "not zlib":
        return draw(st.binary(max_size=200)), count, kind
    if kind == "not msgpack":
        return zlib.compress(b"\xc1" + draw(st.binary(max_size=100))), count, kind
    if kind == "zlib bomb":
        return b"", count, kind
    if kind == "zlib trailing":
        return zlib.compress(pack(change * count)) + draw(st.binary(min_size=1, max_size=16)), count, kind
    if kind == "ext type":
        return zlib.compress(b"\x91\xd4\x05\x00"), 1, kind
    if kind == "too deep":
        return zlib.compress(b"\x91" * draw(st.integers(17, 5000)) + b"\xc0"), 1, kind
    return b"", count, kind


_BOMB: list[bytes] = []


def zlib_bomb() -> bytes:
    if not _BOMB:
        packer = zlib.compressobj(9)
        zeros = bytes(2**20)
        _BOMB.append(b"".join([*(packer.compress(zeros) for _ in range(20)), packer.flush()]))
    return _BOMB[0]


@hostile(150)
@given(body=unreadable_body(), sealed=st.booleans())
def test_an_authentic_batch_whose_body_cannot_be_read_is_held_whole(world: World, body: tuple[bytes, int, str],
                                                                    sealed: bool) -> None:
    TALLY.add("signed: authentic frames with unreadable bodies (bombs, wrong counts, bad zlib, bad ciphertext)")
    s = world.served
    sender = world.v1
    plain, count, kind = body
    if kind == "zlib bomb":
        plain = zlib_bomb()
    seq, prev = s.position(sender)
    if kind == "garbage ciphertext":
        sealed, sent = True, b"\x00" * 48 + plain
    else:
        sent = seal_body(s, plain) if sealed else plain
    header = batch_header(sender, hub_id=s.hub.hub_id, seal_key_id=s.hub.keys.seal_key_id, first_seq=seq,
                          count=count, prev=prev, sealed=sealed, hlc=s.stamp())
    before = counts(s.hub)
    q_mark = s.last_quarantine_id()
    reply = s.push([forge_frame(header, sent, sender.sign)])
    assert reply.status == 200, f"{kind}: {reply.status} {reply.body[:200]!r}"
    ack = s.open_acks(sender, reply)[0]
    assert ack["result"] == "quarantined" and ack["applied"] == 0 and ack["quarantined"] == count, (kind, ack)
    held = s.quarantine_since(q_mark)
    assert len(held) == 1 and held[0][3] == 1 and "unreadable" in held[0][4], (kind, held)
    after = counts(s.hub)
    assert not snapshot_unchanged(before, after, allow=("quarantine", "batches", "cursors"))
    assert after["quarantine"] == before["quarantine"] + 1 and after["batches"] == before["batches"] + 1
    assert s.position(sender)[0] == seq + count
    assert s.healthy()


def test_a_failure_late_in_a_batch_rolls_all_of_it_back(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injected in-process: the hub fails while recording a batch whose changes it has already merged.
    Nothing of that batch may remain (changes, records, quarantine, cursor); the station's retry applies it."""
    TALLY.add("signed: fault injected after the changes were merged, before the batch was recorded")
    s = world.served
    sender = world.v1
    good = [s.wire(sender, 0, "application", sender.fresh_id(), application_fields(sender, world.next_serial()))
            for _ in range(3)]
    bad = ["not a change"]
    seq, _ = s.position(sender)
    changes: list[object] = [[*c[:2], seq + i, *c[3:]] for i, c in enumerate(good)] + bad
    frame = s.batch(sender, changes)
    before = counts(s.hub)
    state = s.hub.store.conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(state)), 0) FROM records").fetchone()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(s.hub.store, "record_batch", broken)
    reply = s.push([frame])
    assert reply.status >= 500, reply.status  # an internal failure, not the station's: no acknowledgement
    monkeypatch.undo()
    assert s.healthy()
    assert not snapshot_unchanged(before, counts(s.hub)), "a failed batch left something behind"
    assert s.hub.store.conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(state)), 0) FROM records").fetchone() \
        == state
    assert s.position(sender)[0] == seq
    ack = s.open_acks(sender, s.push([frame]))[0]
    assert (ack["result"], ack["applied"], ack["quarantined"]) == ("quarantined", 3, 1)


# -- replays, gaps, forks ---------------------------------------------------------------------------------


def test_replays_gaps_and_forks_change_nothing_they_should_not(world: World) -> None:
    TALLY.add("signed: replay, gap, fork, broken chain", 4)
    s = world.served
    sender = world.v2
    seq, _ = s.position(sender)
    app_id = sender.fresh_id()
    frame = s.batch(sender, [s.wire(sender, seq, "application", app_id, application_fields(sender, 90_001))])
    first = s.open_acks(sender, s.push([frame]))[0]
    assert first["result"] == "applied"

    before = counts(s.hub)
    replay = s.open_acks(sender, s.push([frame]))[0]
    assert replay["result"] == "duplicate" and replay["receipt"] == first["receipt"]
    assert not snapshot_unchanged(before, counts(s.hub))

    nxt, chain = s.position(sender)
    gap = s.batch(sender, [s.wire(sender, nxt + 5, "application", app_id, {"note": "gap"})], first_seq=nxt + 5)
    ack = s.open_acks(sender, s.push([gap]))[0]
    assert ack["result"] == "gap" and ack["expected"] == nxt
    assert not snapshot_unchanged(before, counts(s.hub))

    fork = s.batch(sender, [s.wire(sender, seq, "application", app_id, {"note": "rewritten history"})],
                   first_seq=seq, prev=s.hub.store.cursor(sender.code, 1).last_hash)
    ack = s.open_acks(sender, s.push([fork]))[0]
    assert ack["result"] == "fork"
    after = counts(s.hub)
    assert not snapshot_unchanged(before, after, allow=("quarantine", "alerts"))
    assert after["quarantine"] == before["quarantine"] + 1 and after["alerts"] == before["alerts"] + 1
    assert s.hub.records.values("application", app_id).get("note") != "rewritten history"

    unchained = s.batch(sender, [s.wire(sender, nxt, "application", app_id, {"note": "unchained"})],
                        prev=bytes(reversed(chain)))
    ack = s.open_acks(sender, s.push([unchained]))[0]
    assert ack["result"] == "fork" and s.position(sender)[0] == nxt
    assert s.hub.records.values("application", app_id).get("note") != "unchained"
    kinds = [str(a["kind"]) for a in status(s.hub)["alerts"]]  # type: ignore[union-attr]
    assert kinds.count("fork") >= 2, "every fork is raised to the operator"


# -- signed requests with invalid content -------------------------------------------------------------------


@st.composite
def bad_blob_request(draw: st.DrawFn, now: int) -> tuple[dict[str, object], str]:
    sha = draw(st.sampled_from(["a" * 64, "f" * 64]))
    body: dict[str, object] = {"op": draw(st.sampled_from(["query", "chunk"])), "sha256": sha, "size": 1000,
                               "index": 0, "chunk_sha256": "b" * 64, "at_ms": now}
    what = draw(st.sampled_from(["op", "sha256", "size", "index", "chunk_sha256", "at_ms", "unreferenced"]))
    if what != "unreferenced":
        body[what] = draw(st.sampled_from({
            "op": ["file", "delete", "", None, 1, *SQL_STRINGS[:2]],
            "sha256": ["A" * 64, "a" * 63, "../" * 21 + "a", None, 7, SQL_STRINGS[0]],
            "size": [0, -1, 10 * 2**20 + 1, 2**64 - 1, "1000", None, True],
            "index": [-1, 4, 2**40, "0", None, True],
            "chunk_sha256": ["", "B" * 64, None, 3],
            "at_ms": [now - 3_600_000, now + 3_600_000, "now", None, -1],
        }[what]))
    return body, what


@hostile(250)
@given(data=st.data())
def test_signed_pull_and_blob_requests_with_invalid_content_are_4xx(world: World, data: st.DataObject) -> None:
    TALLY.add("signed: pull and blob requests with invalid content")
    s = world.served
    now = s.hub.clock()
    before = counts(s.hub)
    if data.draw(st.booleans(), label="blob?"):
        body, what = data.draw(bad_blob_request(now), label="blob request")
        sha = str(body["sha256"]) if is_sha256_hex(body.get("sha256")) else "a" * 64
        if body.get("op") == "chunk":
            method, path = "PUT", f"/v1/blobs/{sha}/{body.get('index') if isinstance(body.get('index'), int) else 0}"
        else:
            method, path = "GET", f"/v1/blobs/{sha}"
        reply = s.request(method, path, headers=s.signed_header(world.v1, "blob", body), data=b"x" * 10)
    else:
        what = "pull"
        body = data.draw(st.fixed_dictionaries({}, optional={
            "after": st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=5), st.none(), st.booleans()),
            "at_ms": st.one_of(st.just(now), st.integers(-(2**63), 2**64 - 1), st.text(max_size=5)),
            "pending": st.one_of(st.integers(-(2**63), -1), st.integers(2**62, 2**64 - 1),
                                 st.floats(allow_nan=False, allow_infinity=False)),
            "catalogue_version": st.one_of(st.text(max_size=3), st.integers(-(2**63), -1), st.none()),
        }).filter(lambda b: not (b.get("at_ms") == now and type(b.get("after")) is int and 0 <= b["after"] < 2**62
                                 and set(b) <= {"after", "at_ms"})), label="pull body")
        reply = s.request("GET", "/v1/sync/pull", headers=s.signed_header(world.v1, "pull", body))
    assert 400 <= reply.status < 500, f"{what} {body}: {reply.status} {reply.body[:300]!r}"
    assert reply.json().get("error")
    assert not snapshot_unchanged(before, counts(s.hub), allow=("rejected",))
    assert s.healthy()


RECONCILE_BUG = (
    "BUG hub/reconcile.py handle(): a correctly signed /v1/reconcile request with invalid content escapes as a "
    "non-protocol exception, so hub/app.py errors_middleware lets aiohttp answer 500: a malformed merkle request "
    "raises sync.merkle.ReconcileError (a ValueError) from request_depth()/answer(), and op 'done' with a "
    "non-integer figure ('x') raises ValueError, or with one >= 2**63 OverflowError, from record_session()'s "
    "int(str(...)) and the SQLite INSERT. They should be refused with a 4xx (MalformedError) like other bad content."
)


# Regression for RECONCILE_BUG (fixed: invalid content is a MalformedError, 400).
@pytest.mark.parametrize("body", [
    {"op": "merkle", "request": {}},
    {"op": "merkle", "request": {"v": 1, "depth": 99}},
    {"op": "merkle", "request": {"v": 1, "depth": 2, "digests": ["zz"]}},
    {"op": "done", "buckets_compared": "x"},
    {"op": "done", "repaired": 2**64 - 1},
], ids=["merkle-empty", "merkle-too-deep", "merkle-bad-prefix", "done-text-figure", "done-huge-figure"])
def test_a_signed_reconcile_request_with_invalid_content_is_a_4xx(world: World, body: dict[str, object]) -> None:
    TALLY.add("signed: reconcile requests with invalid content")
    s = world.served
    doc = s.signed(world.v1, "reconcile-request", {**body, "at_ms": s.hub.clock()})
    reply = s.request("POST", "/v1/reconcile", data=doc, headers={"Content-Type": "application/vnd.sanji.document"})
    assert s.healthy()
    assert 400 <= reply.status < 500, f"{body}: {reply.status} {reply.body[:120]!r}"


@st.composite
def reconcile_body(draw: st.DrawFn) -> dict[str, object]:
    op = draw(st.sampled_from(["merkle", "records", "repair", "done", "nonsense", None]))
    junk = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=8),
                     st.lists(st.one_of(st.text(max_size=4), st.integers(-(2**63), 2**63 - 1)), max_size=3))
    body: dict[str, object] = {"op": op}
    if op == "merkle":
        body["request"] = draw(st.one_of(junk, st.fixed_dictionaries(
            {"v": st.sampled_from([1, 2, "1"]), "depth": st.one_of(st.integers(-2, 12), st.text(max_size=2))},
            optional={"digests": st.lists(st.text(alphabet="0123456789abcdefxyz", max_size=4), max_size=3),
                      "children": junk, "buckets": junk})))
    elif op == "records":
        body["keys"] = draw(st.one_of(junk, st.lists(st.integers(), min_size=1, max_size=3),
                                      st.lists(st.text(max_size=10), min_size=257, max_size=260)))
    elif op == "repair":
        body.update(draw(st.fixed_dictionaries({}, optional={"changes": junk, "foreign": junk, "chain": junk})))
    elif op == "done":
        body.update(draw(st.fixed_dictionaries({}, optional={
            k: junk for k in ("buckets_compared", "divergent", "repaired", "bytes", "summary_match")})))
    return body


# Regression for RECONCILE_BUG (fixed: invalid content is a MalformedError, 400).
@hostile(300, shrink=False)
@given(body=reconcile_body())
def test_signed_reconcile_requests_with_random_invalid_content_never_get_a_5xx(world: World,
                                                                               body: dict[str, object]) -> None:
    TALLY.add("signed: random reconcile requests")
    s = world.served
    before = counts(s.hub)
    doc = s.signed(world.v1, "reconcile-request", {**body, "at_ms": s.hub.clock()})
    reply = s.request("POST", "/v1/reconcile", data=doc, headers={"Content-Type": "application/vnd.sanji.document"})
    assert s.healthy()
    assert reply.status < 500, f"{body}: {reply.status}"
    if reply.status >= 400:
        assert not snapshot_unchanged(before, counts(s.hub), allow=("rejected",))


def test_refusals_and_quarantine_are_visible_to_the_operator(world: World) -> None:
    """After everything above: the operator's status shows the refusals and the held changes, with reasons."""
    s = world.served
    forged = forge_frame({**batch_header(world.v1, hub_id=s.hub.hub_id, seal_key_id="", first_seq=1, count=1,
                                         prev=bytes(32), sealed=False, hlc=1)}, zlib.compress(pack([None])),
                         world.v2.sign)
    reply = s.push([forged])
    assert reply.status == 403 and reply.json()["message"]
    shown = status(s.hub)
    assert shown["rejected_batches"] == s.hub.store.count("rejected") >= 1
    last = shown["last_rejections"]
    assert isinstance(last, list) and last and "bad_signature" in str(last[0]["reason"])
    assert last[0]["origin"] == V1
    held = s.hub.store.quarantined()
    assert shown["quarantined"] == len(held) and all(str(h["reason"]).strip() for h in held)
