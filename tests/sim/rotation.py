"""The hub rotates its keys (issue 21): `sanji hub rotate-key` and `sanji hub rotate-root`, mid-run.

hub/keyring.py on the hub side (``SimHub.rotate_key`` / ``rotate_root``: a new key list, releases
signed again), node/hubkeys.py on the station side (``uplink_model.adopt_keys``, asked at the start of
every sync round): a station offline across one or more rotations follows them in turn later. After a
key rotation the old online key is treated as compromised: an attacker holding it signs a release of a
higher version and hands it to a station on a USB stick. Once the station has followed past that key,
it must refuse the release and change nothing (checkers ``signed_by_listed`` and ``forgery_accepted``).

It draws from a random stream of its own, like compromised.py, so the plan of every seed (and every
regression replay) stays what it was; it stays out of runs that replay a fixed adapter issue.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from protocol.document import sign_document
from tests.sim.catalogue import release_body
from tests.sim.faults import START_MS
from tests.sim.network import HUB, Event
from tests.sim.uplink_model import import_file

if TYPE_CHECKING:
    from tests.sim.world import World


def schedule(world: World, seed: int) -> None:
    """About one seed in ten rotates the online key (once or twice), one in ten the root."""
    rng = random.Random(seed * 7933 + 31)
    if world.as_is:
        return
    kinds = ["rotate_key"] * (rng.randint(1, 2) if rng.random() < 0.1 else 0)
    kinds += ["rotate_root"] if rng.random() < 0.1 else []
    if not kinds:
        return
    world.rotation_rng = rng
    for node in world.nodes.values():
        node.follows_keys = True
    for kind in kinds:
        world.queue.push(START_MS + rng.randint(0, world.plan.duration), Event(kind, HUB))
    if "rotate_key" in kinds:
        for _ in range(rng.randint(1, 3)):
            world.queue.push(START_MS + rng.randint(0, world.plan.duration), Event("forge_removed"))


def rotate(world: World, kind: str) -> None:
    """The operator rotates with the root key from the security office; the hub may be serving or not."""
    hub, rng = world.hub, world.rotation_rng
    assert rng is not None
    if kind == "rotate_key":
        world.retired.append((hub.keys_version, hub.sign))
        version = hub.rotate_key(rng.randbytes(32))
    else:
        version = hub.rotate_root(rng.randbytes(32))
    world.stats.rotations += 1
    world.note(f"hub {kind}: key list {version}")


def forge_removed(world: World, code: str | None = None) -> str:
    """A release of a higher version signed by a key the hub has removed, carried to a station that
    has followed past it. Returns the outcome ("" when no station has followed past a removed key)."""
    rng = world.rotation_rng or random.Random(0)
    candidates = sorted(
        c
        for c, n in world.nodes.items()
        if n.up and (code is None or c == code) and any(v < n.store.hub_keys_version for v, _ in world.retired)
    )
    if not candidates:
        return ""
    node = world.nodes[rng.choice(candidates)]
    key = rng.choice([k for v, k in world.retired if v < node.store.hub_keys_version])
    version = max(world.hub.store.releases) + 5
    frame = sign_document(
        "catalogue",
        release_body(version, world.now),
        signer=world.hub.hub_id,
        recipient="*",
        signing_key=key,
        extra_header={"version": version},
    )
    world.stats.forgeries += 1
    before = world.node_fingerprint(node)
    outcome = import_file(node, frame)
    world.note(f"forged release signed by a removed key to {node.code}: {outcome[:60]}")
    if outcome == "accepted":
        world.checks.fail("forgery_accepted", f"{node.code} accepted a release signed by a removed hub key")
    world.checks.unchanged(
        f"{node.code} refused a release signed by a removed key but changed", before, world.node_fingerprint(node)
    )
    return outcome
