"""After the last fault: links back, crashed processes restarted, clocks corrected to within two
minutes, and then at most three sync rounds for the district to agree.

A healing round is what a district does on a good day: every station syncs (push, then pull), the hub
operator settles the quarantine (``actions.review_quarantine``), the nightly anti-entropy runs once
per station, and the operator looks at what it brought in. After each round every station's records
must equal the hub's copy of its scope; after the last one, the final checks run: every accepted
application is at the hub, numbers are unique, and no station still has changes queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.conversation import Conversation
from tests.sim import relay
from tests.sim.actions import review_quarantine
from tests.sim.district import HubDown, Node
from tests.sim.faults import HOUR, MINUTE, START_MS
from tests.sim.network import Queue

if TYPE_CHECKING:
    from tests.sim.world import World

HEAL_ROUNDS = 3


def heal(world: World) -> None:
    world.now = START_MS + world.plan.duration + HOUR
    world.checks.now = world.now
    for code in list(world.convs):
        world.abort(code, "fault phase over")
    world.queue = Queue()  # what was still in flight is lost
    world.links.heal_all()
    world.frozen.clear()  # the proxy is found and removed
    world.hub.up = True
    for code, node in world.nodes.items():
        node.up = True
        world.skews[code] = world.rng.randint(-2 * MINUTE, 2 * MINUTE)
    world.note("heal")
    if world.relay is not None:
        relay.heal(world)
    found: list[str] = []
    for rnd in range(1, HEAL_ROUNDS + 1):
        world.now += 30 * MINUTE
        world.checks.now = world.now
        for node in world.nodes.values():
            direct(world, node, world.conversation(node, "sync"))
        released, rejected = review_quarantine(world)
        world.stats.released += released
        world.note(f"heal round {rnd}: released {released}, rejected {rejected}")
        for node in world.nodes.values():
            direct(world, node, world.conversation(node, "reconcile"))
        released, rejected = review_quarantine(world)  # what the repairs brought in and the hub held
        world.stats.released += released
        world.after_step()
        found = mismatches(world)
        if not found:
            world.stats.converged_in = rnd
            break
    if found:
        world.checks.fail(
            "no_convergence",
            f"{len(found)} difference(s) after {HEAL_ROUNDS} rounds, e.g. " + "; ".join(found[:4]),
        )
    world.stats.held = int(world.hub.hub.store.conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0])
    world.stats.lost_to_restore = world.checks.accepted_at_hub(world.accepted, world.nodes, world.hub, world.cloned)
    world.checks.numbers_unique(world.hub, world.cloned)
    for node in world.nodes.values():
        if node.meta("stale_rounds"):  # a genuine, answered page clears the warning
            world.checks.fail("stale_after_heal", f"{node.code} is still flagged stale after healing")
        if node.st.pending_changes():
            world.checks.fail(
                "outbox_not_drained",
                f"{node.code} still has {node.st.pending_changes()} change(s) queued after healing",
            )
    world.note(f"end {len(world.checks.violations)} violation(s)")


def mismatches(world: World) -> list[str]:
    """Every station's differences from the hub's copy of its scope (checkers.scope_mismatch)."""
    lost = world.checks.lost_to_restores(world.accepted, world.nodes, world.hub)
    return [m for node in world.nodes.values() for m in world.checks.scope_mismatch(node, world.hub, lost)]


def direct(world: World, node: Node, gen: Conversation[object]) -> None:
    """Drive one conversation over a perfect network (the healed district); a failure is a violation."""
    from tests.sim.world import ROUND_ERRORS

    try:
        request = next(gen)
        while True:
            if request.meanwhile is not None:
                request.meanwhile()
            answer = world.hub_answer(request)
            world.note(f"{node.code} {request.kind}({request.summary}) -> {answer.status}")
            request = gen.send(answer)
    except StopIteration:
        pass
    except (*ROUND_ERRORS, HubDown) as exc:
        world.checks.fail("heal_round_failed", f"{node.code}: {exc}")
    finally:
        gen.close()
