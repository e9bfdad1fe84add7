"""A change that builds on one of its author's held changes waits for it (issue 12).

Built on a held forgery, it must never be judged from what the forgery wrote (the forgery's move
would then be completed one step later); it waits, held, and stays held when the forgery is
rejected. Built on an honest change held for clock skew, it is applied as it is once an operator
releases that one (``hub.quarantine_review.rejudge_waiting``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub import operations, quarantine_review
from node import commands
from sync.session import AckResult
from tests.conftest import MINUTE_MS, SkewedClock, World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

TOWNSHIP_ITEM = "360802-0010"  # promised, decided by the township
IMMEDIATE_ITEM = "360802-0001"


def _held(w: World) -> list[tuple[int, int, str, str]]:
    rows = w.hub.store.conn.execute("SELECT id, seq, code, state FROM quarantine ORDER BY seq").fetchall()
    return [(int(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]


def test_a_move_built_on_a_held_forgery_waits_and_stays_held(make_world: Callable[..., World]) -> None:
    w = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v = w.get("T1-V1")
    app = w.accept(v, TOWNSHIP_ITEM)
    w.push(v)
    app_id = str(app["id"])
    with v.transaction():
        seen = v.records.load("application", app_id)["status"][0]
        forged = v.write_unchecked("application", app_id, {"status": "completed"}, {"status": seen})  # no decision
        v.write_unchecked("application", app_id, {"status": "delivered"}, {"status": forged.hlc})  # legal from there
    (ack,) = w.push(v)
    assert (ack.applied, ack.quarantined) == (0, 2)
    (first, _, code1, _), (_, _, code2, _) = _held(w)
    assert (code1, code2) == ("illegal_move", "builds_on_held")
    assert w.hub.records.values("application", app_id)["status"] == "accepted"

    quarantine_review.reject(w.hub, first, by="审核员", reason="越级办结")
    assert quarantine_review.rejudge_waiting(w.hub) == 0  # nothing it built on was released
    assert [r[3] for r in _held(w)] == ["rejected", "open"]
    assert w.hub.records.values("application", app_id)["status"] == "accepted"


def test_a_move_built_on_an_honest_held_change_applies_when_that_is_released(make_world: Callable[..., World]) -> None:
    w = make_world(("T1", "township", ""))
    fast = SkewedClock(w.clock, 11 * MINUTE_MS)
    v = w.station("T1-V1", "village", "T1", clock=fast)
    app = w.accept(v, IMMEDIATE_ITEM)
    (ack,) = w.push(v)
    assert (ack.result, ack.quarantined) == (AckResult.QUARANTINED, 1)  # stamped 11 minutes ahead of the hub
    app_id, number = str(app["id"]), str(app["number"])
    # The station's clock is put right and time passes: its next change is within the hub's bound, but
    # it builds on the acceptance the hub still holds.
    fast.offset_ms = 0
    w.clock.advance(5 * MINUTE_MS)
    commands.transition(v, number, "completed")
    (ack,) = w.push(v)
    assert (ack.applied, ack.quarantined) == (0, 1)
    assert [(seq, code) for _, seq, code, _ in _held(w)] == [(1, "clock_ahead"), (2, "unknown_application")]

    out = quarantine_review.release(w.hub, _held(w)[0][0], by="审核员")
    assert out["rejudged"] == 1
    assert [state for *_, state in _held(w)] == ["released", "released"]
    assert w.hub.records.values("application", app_id)["status"] == "completed"
    assert w.hub.records.has_change("T1-V1", 1, 2)  # the station's own change, applied as it was
    assert operations.show(w.hub, number)["status"] == "completed"
