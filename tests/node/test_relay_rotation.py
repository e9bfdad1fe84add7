"""An honest relay holding the hub's answers across a key rotation (the simulator's seed 232): the
village followed the rotation by another way (its own line for a while, a stick), then collects at its
relay the acks and page the hub signed with the key it has since replaced. They are refused, as any
document under a replaced key is, and offered or asked for again; but the relay did nothing wrong and
must not be named for them (a named relay is left alone for 24 hours)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hub import keyring
from node import hubkeys, relay_alert
from tests.conftest import World
from tests.node.test_relay import Relayed, pending, relay_world


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


async def _answers_signed_then_rotated(relayed: Relayed) -> str:
    """The village's batch and pull request go up through the relay and are answered under key list 1;
    then the hub rotates, and the village follows by its own line before it visits the relay again."""
    number = relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)
    done = await relayed.forward()
    assert done.batches == 1 and done.pulls == 1 and done.errors == [], done
    keyring.rotate_key(relayed.world.hub)
    hubkeys.adopt(relayed.v1, keyring.bundle(relayed.world.hub))  # a direct round's first step
    return number


async def test_answers_signed_before_a_rotation_do_not_name_an_honest_relay(relayed: Relayed) -> None:
    number = await _answers_signed_then_rotated(relayed)

    rnd = await relayed.village_round(relayed.v1)

    assert rnd.problems, rnd  # refused: signed by a key the village no longer trusts
    assert rnd.misdeeds == [], rnd.misdeeds
    assert relay_alert.current(relayed.v1) is None
    # Nothing lost: the batch is offered again (the round after the refused acks were handed over),
    # forwarded, and answered under the new key.
    for _ in range(3):
        await relayed.forward()
        await relayed.village_round(relayed.v1)
    assert pending(relayed.v1) == 0 and relayed.hub_count(number) == 1


async def test_answers_no_key_of_the_hub_signed_still_name_the_relay(relayed: Relayed) -> None:
    """The line stays where it was: a relay that cut the hub's answers short is named, rotation or not."""
    await _answers_signed_then_rotated(relayed)
    with relayed.queue() as conn:
        conn.execute("UPDATE relay_frames SET data = substr(data, 1, length(data) - 1) WHERE direction='down'")

    rnd = await relayed.village_round(relayed.v1)

    assert {m for m, _ in rnd.misdeeds} & {"bad_acks", "bad_page"}, rnd
    alert = relay_alert.current(relayed.v1)
    assert alert is not None and alert["problem"] in ("bad_acks", "bad_page"), alert
