"""A change another station re-sent on its origin's behalf (held under that sender) must not stand in for
the origin's own copy: found by the fault simulator once it ran the real hub (tests/sim, seed 13).

After a hub restore, the township's nightly repair re-sent a village's changes the hub had lost (held:
only the origin can vouch for them); the village's own repair then skipped them as already held, and
moved its cursor past them, so its accepted applications never reached the hub.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub import reconcile
from hub.ingest import ingest_frame
from node import uplink
from node.reconcile import SCOPE_SQL
from protocol.reconciliation import ReconcileRequest
from replica.scope import row_to_wire
from sync.session import AckResult, Cursor
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


def _repair(
    *, changes: tuple[object, ...] = (), foreign: tuple[object, ...] = (), chain: dict[str, object] | None = None
) -> ReconcileRequest:
    return ReconcileRequest("repair", 0, changes=changes, foreign=foreign, chain=chain)


DISTRICT_ITEM = "360802-0004"


def test_the_origins_own_copy_is_taken_though_another_station_re_sent_it(make_world: Callable[..., World]) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    hub, v1 = world.hub, world.get("T1-V1")
    world.accept(v1, DISTRICT_ITEM)
    uplink.build_outbox(v1)  # batched, but the batch never reached the hub (or a restore lost it)
    own = [row_to_wire(r) for r in v1.conn.execute(SCOPE_SQL).fetchall() if r[0] == v1.code]
    chain = {"epoch": 1, "batched_seq": v1.meta.int("batched_seq"), "hash": v1.meta.bytes("chain")}

    assert reconcile.repair(hub, "T1", _repair(foreign=tuple(own))).to_wire() == {"applied": 0, "held": 1, "skipped": 0}
    # The village's own cursor does not move past a copy only the township vouched for.
    reconcile.repair(hub, v1.code, _repair(chain=chain))
    assert hub.store.cursor(v1.code, 1).next_seq == 1

    got = reconcile.repair(hub, v1.code, _repair(changes=tuple(own), chain=chain))
    assert got.to_wire() == {"applied": 1, "held": 0, "skipped": 0}
    assert hub.records.has_change(v1.code, 1, 1)
    assert hub.store.cursor(v1.code, 1).next_seq == 2


def test_a_batch_is_not_taken_as_held_for_a_copy_another_station_re_sent(make_world: Callable[..., World]) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    hub, v1 = world.hub, world.get("T1-V1")
    world.accept(v1, DISTRICT_ITEM)
    (frame,) = world.frames(v1)
    own = [row_to_wire(r) for r in v1.conn.execute(SCOPE_SQL).fetchall() if r[0] == v1.code]
    reconcile.repair(hub, "T1", _repair(foreign=tuple(own)))
    with hub.store.transaction():  # a cursor past the batch with no record of it (a repair, a restore)
        hub.store.set_cursor(v1.code, 1, Cursor(2, bytes(32)))
    ack = ingest_frame(hub, frame, source="test")
    # Not "duplicate": the village would count as delivered a change the hub holds only on T1's word.
    assert ack.result is AckResult.FORK
