"""The hub rotates its keys (issue 21): `sanji hub rotate-key` and `sanji hub rotate-root`, mid-run.

hub/keyring.py on the hub side (``rotate_key`` / ``rotate_root``: a new key list, releases signed
again), node/hubkeys.py on the station side (``adopt``, through node/conversation.py's ``refresh_keys``
at the start of every sync round): a station offline across one or more rotations follows them in turn later. After a
key rotation the old online key is treated as compromised: an attacker holding it signs a release of a
higher version and hands it to a station on a USB stick. Once the station has followed past that key,
it must refuse the release and change nothing (checkers ``signed_by_listed`` and ``forgery_accepted``).

It draws from a random stream of its own, like compromised.py, so the plan of every seed (and every
regression replay) stays what it was.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from hub import keyring
from protocol.document import sign_document
from tests.sim.catalogue import release_body
from tests.sim.faults import START_MS
from tests.sim.network import HUB, Event

if TYPE_CHECKING:
    from tests.sim.world import World


def schedule(world: World, seed: int) -> None:
    """About one seed in ten rotates the online key (once or twice), one in ten the root."""
    rng = random.Random(seed * 7933 + 31)
    kinds = ["rotate_key"] * (rng.randint(1, 2) if rng.random() < 0.1 else 0)
    kinds += ["rotate_root"] if rng.random() < 0.1 else []
    if not kinds:
        return
    world.rotation_rng = rng
    for kind in kinds:
        world.queue.push(START_MS + rng.randint(0, world.plan.duration), Event(kind, HUB))
    if "rotate_key" in kinds:
        for _ in range(rng.randint(1, 3)):
            world.queue.push(START_MS + rng.randint(0, world.plan.duration), Event("forge_removed"))


def rotate(world: World, kind: str) -> None:
    """The operator rotates with the root key kept in the hub folder (hub/keyring.py); the hub may be
    serving or not."""
    hub, rng = world.hub.hub, world.rotation_rng
    assert rng is not None
    if kind == "rotate_key":
        old_version = keyring.load_chain(hub.folder).version  # type: ignore[union-attr]
        world.retired.append((old_version, hub.keys.sign))
        version = int(str(keyring.rotate_key(hub)["version"]))
    else:
        new_root = world.root / "roots" / f"root-{rng.getrandbits(32):08x}.key"
        new_root.parent.mkdir(exist_ok=True)
        version = int(str(keyring.rotate_root(hub, new_root)["version"]))
    world.listed[version] = hub.keys.sign_pub
    world.stats.rotations += 1
    world.note(f"hub {kind}: key list {version}")


def forge_removed(world: World, code: str | None = None) -> str:
    """A release of a higher version signed by a key the hub has removed, carried to a station that
    has followed past it. Returns the outcome ("" when no station has followed past a removed key)."""
    rng = world.rotation_rng or random.Random(0)
    candidates = sorted(
        c
        for c, n in world.nodes.items()
        if n.up and (code is None or c == code) and any(v < n.meta("hub_keys_version") for v, _ in world.retired)
    )
    if not candidates:
        return ""
    node = world.nodes[rng.choice(candidates)]
    key = rng.choice([k for v, k in world.retired if v < node.meta("hub_keys_version")])
    version = world.hub.hub.published_up_to() + 5
    frame = sign_document(
        "catalogue",
        release_body(version, world.now),
        signer=world.hub.hub_id,
        recipient="*",
        signing_key=key,
        extra_header={"version": version},
    )
    world.stats.forgeries += 1
    before = world.fingerprint(node)
    outcome = world.import_file(node, frame, "catalogue")
    world.note(f"forged release signed by a removed key to {node.code}: {outcome[:60]}")
    if outcome == "accepted":
        world.checks.fail("forgery_accepted", f"{node.code} accepted a release signed by a removed hub key")
    world.checks.unchanged(
        f"{node.code} refused a release signed by a removed key but changed", before, world.fingerprint(node)
    )
    return outcome
