"""Genuine signatures over whole batches the hub must hold, refuse or roll back as one.

Every batch here is correctly signed by an enrolled station. Authentic frames whose bodies cannot be read
(zlib bombs, wrong counts, bad zlib or msgpack, ext types, deep nesting, garbage ciphertext) are held
whole in quarantine with a reason and the cursor moves past them; a fault injected after the changes were
merged leaves nothing of the batch behind and the station's retry applies it; replays, gaps, forks and
broken chains change nothing they should not, and every fork is raised to the operator; the operator's
status shows the refusals and the held changes, with reasons.
"""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.operations import status
from protocol.codec import pack

from .harness import (
    TALLY,
    application_fields,
    batch_header,
    counts,
    forge_frame,
    hostile,
    seal_body,
    snapshot_unchanged,
)
from .helpers import V1, World

# -- bodies that cannot be read ----------------------------------------------------------------------------


@st.composite
def unreadable_body(draw: st.DrawFn) -> tuple[bytes, int, str]:
    """(plain body, count the header claims, what is wrong)."""
    kind = draw(
        st.sampled_from(
            [
                "count too high",
                "count too low",
                "not a list",
                "not zlib",
                "not msgpack",
                "zlib bomb",
                "zlib trailing",
                "ext type",
                "too deep",
                "garbage ciphertext",
            ]
        )
    )
    count = draw(st.integers(1, 6))
    change = [None]
    if kind == "count too high":
        return zlib.compress(pack(change * (count - 1))), count, kind
    if kind == "count too low":
        return zlib.compress(pack(change * (count + draw(st.integers(1, 5))))), count, kind
    if kind == "not a list":
        ints = st.integers(-(2**63), 2**64 - 1)
        return (
            zlib.compress(
                pack(draw(st.one_of(st.none(), ints, st.text(max_size=10), st.dictionaries(st.text(max_size=4), ints))))
            ),
            count,
            kind,
        )
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
def test_an_authentic_batch_whose_body_cannot_be_read_is_held_whole(
    world: World, body: tuple[bytes, int, str], sealed: bool
) -> None:
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
    header = batch_header(
        sender,
        hub_id=s.hub.hub_id,
        seal_key_id=s.hub.keys.seal_key_id,
        first_seq=seq,
        count=count,
        prev=prev,
        sealed=sealed,
        hlc=s.stamp(),
    )
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
    good = [
        s.wire(sender, 0, "application", sender.fresh_id(), application_fields(sender, world.next_serial()))
        for _ in range(3)
    ]
    bad = ["not a change"]
    seq, _ = s.position(sender)
    changes: list[object] = [[*c[:2], seq + i, *c[3:]] for i, c in enumerate(good)] + bad
    frame = s.batch(sender, changes)
    before = counts(s.hub)
    state = s.hub.store.conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(state)), 0) FROM records").fetchone()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(s.writer.store, "record_batch", broken)  # batches are taken in through it
    reply = s.push([frame])
    assert reply.status >= 500, reply.status  # an internal failure, not the station's: no acknowledgement
    monkeypatch.undo()
    assert s.healthy()
    assert not snapshot_unchanged(before, counts(s.hub)), "a failed batch left something behind"
    assert s.hub.store.conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(state)), 0) FROM records").fetchone() == state
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

    fork = s.batch(
        sender,
        [s.wire(sender, seq, "application", app_id, {"note": "rewritten history"})],
        first_seq=seq,
        prev=s.hub.store.cursor(sender.code, 1).last_hash,
    )
    ack = s.open_acks(sender, s.push([fork]))[0]
    assert ack["result"] == "fork"
    after = counts(s.hub)
    assert not snapshot_unchanged(before, after, allow=("quarantine", "alerts"))
    assert after["quarantine"] == before["quarantine"] + 1 and after["alerts"] == before["alerts"] + 1
    assert s.hub.records.values("application", app_id).get("note") != "rewritten history"

    unchained = s.batch(
        sender, [s.wire(sender, nxt, "application", app_id, {"note": "unchained"})], prev=bytes(reversed(chain))
    )
    ack = s.open_acks(sender, s.push([unchained]))[0]
    assert ack["result"] == "fork" and s.position(sender)[0] == nxt
    assert s.hub.records.values("application", app_id).get("note") != "unchained"
    kinds = [str(a["kind"]) for a in status(s.hub)["alerts"]]  # type: ignore[union-attr]
    assert kinds.count("fork") >= 2, "every fork is raised to the operator"


def test_refusals_and_quarantine_are_visible_to_the_operator(world: World) -> None:
    """After everything above: the operator's status shows the refusals and the held changes, with reasons."""
    s = world.served
    forged = forge_frame(
        {
            **batch_header(
                world.v1, hub_id=s.hub.hub_id, seal_key_id="", first_seq=1, count=1, prev=bytes(32), sealed=False, hlc=1
            )
        },
        zlib.compress(pack([None])),
        world.v2.sign,
    )
    reply = s.push([forged])
    assert reply.status == 403 and reply.json()["message"]
    shown = status(s.hub)
    assert shown["rejected_batches"] == s.hub.store.count("rejected") >= 1
    last = shown["last_rejections"]
    assert isinstance(last, list) and last and "bad_signature" in str(last[0]["reason"])
    assert last[0]["origin"] == V1
    held = s.hub.store.quarantined()
    assert shown["quarantined"] == len(held) and all(str(h["reason"]).strip() for h in held)
