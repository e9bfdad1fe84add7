"""A compromised station: a real, enrolled village with its own keys, running modified software.

Its forged changes are written through its own write path (so they sit in its log, are batched,
signed, sealed and sent like any others) but are moves its own commands refuse: a status its roles
may not reach from the status it holds, a new application for an item in no catalogue, under a
release never published, numbered in a neighbour's namespace, or created already completed.

The invariant (issue 12): no record changes anywhere but at the author by such a change. Every forged
change is registered as forbidden; the merge hook of every other replica, hub included, fails the run
if one is ever merged, by any path (push, USB, reconciliation, an operator's review). The records it
touched are tainted: the compromised station's own view of them may rightly differ from the hub's, so
the convergence checks leave them out.

It draws from a random stream of its own, so the plan of every seed (and every regression replay)
stays what it was.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from protocol.errors import RemoteProtocolError
from replica.errors import Refused
from sync.model import Actor, RecordContext, roles_of
from sync.workflow import TRANSITIONS, Status, is_allowed, may_move
from tests.sim.faults import START_MS
from tests.sim.network import Event

if TYPE_CHECKING:
    from tests.sim.world import World

KINDS = ("bypass", "unknown_item", "unknown_release", "neighbour_number", "created_completed")


def schedule(world: World, seed: int) -> None:
    """Now and then (half the seeds) one village turns compromised and strikes one to three times."""
    rng = random.Random(seed * 7919 + 12)
    villages = [code for code in world.plan.nodes if code.startswith("V")]
    if not villages or rng.random() < 0.5:
        return
    world.compromise_rng = rng
    code = rng.choice(villages)
    for _ in range(rng.randint(1, 3)):
        world.queue.push(START_MS + rng.randint(0, world.plan.duration), Event("compromise", code))


def strike(world: World, code: str) -> None:
    node, rng = world.nodes[code], world.compromise_rng
    if not node.up or rng is None:
        return
    kind = rng.choice(KINDS)
    own = [str(r[0]) for r in node.st.conn.execute("SELECT id FROM applications WHERE station=? ORDER BY id", (code,))]
    try:
        if kind == "bypass" and own:
            forged = _bypass(world, code, rng.choice(own), rng)
        else:
            forged = _creation(world, code, "unknown_item" if kind == "bypass" else kind, rng)
    except (Refused, RemoteProtocolError):  # no release it can read (restored to older keys)
        return
    if forged is None:
        return
    world.checks.forbid(forged)
    world.checks.tainted.add(("application", forged.id))
    world.note(f"compromised {code} forged {kind} on {forged.id}: {dict(forged.fields)}")


def _write(world: World, code: str, app_id: str, fields: dict[str, object], base: dict[str, int]):  # type: ignore[no-untyped-def]
    """The station's write path without its admission check (``Station.write_unchecked``)."""
    st = world.nodes[code].st
    with st.transaction():
        return st.write_unchecked("application", app_id, fields, base)


def _bypass(world: World, code: str, app_id: str, rng: random.Random):  # type: ignore[no-untyped-def]
    """A status its roles may not reach from the status it holds, written on the version it holds."""
    node = world.nodes[code]
    record = node.st.records.load("application", app_id)
    seen = str(record["status"][2])
    immediate = record.get("kind", (0, "", ""))[2] == "immediate"
    item = str(record.get("item", (0, "", ""))[2])
    tier, parent = node.st.tier, node.st.meta.text("parent")
    roles = roles_of(Actor(code, tier), RecordContext(code, parent or None, world.hub.hub.decided_at(item)))
    legal = {
        to.value
        for (frm, move), to in TRANSITIONS.items()
        if frm.value == seen
        and is_allowed(frm, move, immediate=immediate)
        and any(may_move(r, move, immediate=immediate) for r in roles)
    }
    targets = sorted({s.value for s in Status} - legal - {seen})
    if not targets:
        return None
    return _write(world, code, app_id, {"status": rng.choice(targets)}, {"status": record["status"][0]})


def _creation(world: World, code: str, kind: str, rng: random.Random):  # type: ignore[no-untyped-def]
    """A new application the accept command would refuse to write."""
    st = world.nodes[code].st
    state = st.catalogue()
    version, cat = state.version, state.catalogue
    item = next(i for i in cat.items_for_tier(st.tier))
    app_id = f"{code.lower()}-forged-{rng.getrandbits(48):012x}"
    counter = st.meta.int("counter") + 1
    with st.transaction():
        st.meta.set("counter", counter)
    day = "20260302"
    number = f"{code}-{day}-{counter:05d}"
    fields: dict[str, object] = {
        "number": number,
        "station": code,
        "item": item.code,
        "catalogue_version": version,
        "kind": item.kind,
        "applicant_name": "伪造申请人",
        "applicant_id": "360802198506150010",
        "applicant_phone": "13800000000",
        "address": "",
        "accepted_at": "2026-03-02T09:00:00+08:00",
        "due_date": "2026-03-02",
        "status": "accepted",
    }
    if kind == "unknown_item":
        fields["item"] = "360802-9999"
    elif kind == "unknown_release":
        fields["catalogue_version"] = 99
    elif kind == "neighbour_number":
        neighbour = next((c for c in world.plan.nodes if c != code and c.startswith("V")), "V99")
        fields["number"] = f"{neighbour}-{day}-{90000 + counter:05d}"
    else:
        fields["status"] = "completed"
    return _write(world, code, app_id, fields, {})
