"""An honest relay is never named (a named relay is left alone for 24 hours, and a village cut off from
the hub has no other path). Both cases from the simulator's seed 232:

- the relay held the hub's answers across a key rotation the village followed by another way (its
  own line for a while, a stick): acks and page signed with the replaced key are refused, as any
  document under it is, and offered or asked for again, but they are the hub's;
- the village was restored from a backup (``node restore``) while its pull request waited at the
  relay: the page answering it is the hub's answer to that request, not a replay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from hub import keyring
from node import epoch, hubkeys, relay_alert, relay_forward
from node.station import Station
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


async def test_a_village_restored_from_a_backup_does_not_name_its_relay(relayed: Relayed) -> None:
    v1 = relayed.v1
    backup = relayed.world.root / "v1-backup.db"
    epoch.backup(v1, backup)
    number = relayed.accept(v1)
    await relayed.village_round(v1)  # its batch and a pull request with a fresh nonce, left at the relay
    await relayed.forward()
    v1.close()
    epoch.restore(v1.folder, backup)  # the nonce of that pull request is not in the backup
    relayed.v1 = v1 = Station(v1.folder)

    rnd = await relayed.village_round(v1)

    assert rnd.misdeeds == [], rnd.misdeeds
    assert relay_alert.current(v1) is None
    assert relayed.hub_count(number) == 1


async def test_a_line_lost_after_the_answers_does_not_leave_them_beside_an_old_key_history(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's seed 5603: the township asked for the key history after forwarding; its line
    dropped in between, and the answers (under the key the hub had rotated to) waited beside the old
    history, which the village could not follow: it refused them and named its relay. The history is
    asked for first now: a line that drops there leaves nothing forwarded, and nothing to blame."""
    async with aiohttp.ClientSession() as session:  # the serving hub takes up its new key when asked
        keyring.rotate_key(relayed.world.hub)
        async with session.get(f"{relayed.hub_url}/v1/keys"):
            pass
    number = relayed.accept(relayed.v1)
    await relayed.village_round(relayed.v1)

    async def dropped(*args: object) -> None:
        raise aiohttp.ClientConnectionError("the township's line dropped")

    with monkeypatch.context() as m:
        m.setattr(relay_forward, "_keys", dropped)
        with pytest.raises(aiohttp.ClientError):
            await relayed.forward()
    rnd = await relayed.village_round(relayed.v1)

    assert rnd.misdeeds == [], rnd.misdeeds
    for _ in range(2):  # and once the line holds, everything arrives
        await relayed.forward()
        await relayed.village_round(relayed.v1)
    assert pending(relayed.v1) == 0 and relayed.hub_count(number) == 1
