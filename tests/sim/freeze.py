"""A frozen feed (issue 21): for a while, something on the path in front of one station answers its
pulls with the last genuine page it saw go by, so every round "works" and nothing ever advances.

node/client.py answers it with a nonce in every pull that the hub answers in the page's signed header
(hub/feed.py): a replayed page cannot answer it, is refused, and the round counts in ``stale_rounds``
(node/freshness.py). Checked: a replayed page never changes the station (``frozen_page_applied``), and
the station is flagged stale by the end of the first round that only a replay answered
(``freeze_unflagged``). The proxy passes pushes and the key history through: it only freezes the feed.

It draws from a random stream of its own, like compromised.py, so the plan of every seed (and every
regression replay) stays what it was.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from tests.sim.faults import DAY, HOUR, START_MS
from tests.sim.network import Event

if TYPE_CHECKING:
    from tests.sim.world import World

PROXY = "proxy"  # the sender of a replayed page (never the hub, so the hub's links do not apply)
DELAY_MS = 300  # the proxy answers at once, from a cache next to the station


def schedule(world: World, seed: int) -> None:
    """About one seed in seven freezes one station's feed for six hours to two days, now and then twice."""
    rng = random.Random(seed * 7937 + 41)
    if rng.random() >= 0.15:
        return
    for _ in range(rng.randint(1, 2)):
        code = rng.choice(world.plan.nodes)
        start = START_MS + rng.randint(0, world.plan.duration)
        world.queue.push(start, Event("freeze", code, 0, start + rng.randint(6 * HOUR, 2 * DAY)))


def start(world: World, code: str, until: int) -> None:
    world.frozen[code] = max(world.frozen.get(code, 0), until)
    world.queue.push(until, Event("thaw", code, 0, until))
    world.note(f"{code}'s feed frozen until t+{(until - START_MS) / HOUR:.1f}h")


def thaw(world: World, code: str, until: int) -> None:
    if world.frozen.get(code) == until:  # the last of overlapping freezes ends it
        del world.frozen[code]
