"""A village's report of its relay survives a hub that answers and then loses its bookkeeping: the village
repeats it until a page the hub signed echoes the report's digest, and the hub raises it once however
often it comes (hub/relay_reports.py, node/relay_alert.py ``echoed``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hub import relay_reports
from hub import usb_files as hub_usb
from node import client, relay_alert, status, usb_files
from tests.conftest import World
from tests.node.test_relay import TOWNSHIP, V1, Relayed, relay_world
from tests.node.test_relay_alert import forged_receipt, hub_alerts


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


async def caught(r: Relayed) -> None:
    await forged_receipt(r)
    rnd = await r.village_round(r.v1)
    assert [m for m, _ in rnd.misdeeds] == ["bad_acks"], rnd


async def test_a_report_the_hub_lost_after_answering_is_sent_again_and_raised_once(
    relayed: Relayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = relayed.v1
    await caught(relayed)

    def crash(*_args: object) -> bool:
        raise RuntimeError("the hub stopped between answering and its bookkeeping")

    # The hub answers every pull of the round, and each time its deferred step is lost.
    monkeypatch.setattr(relay_reports, "record", crash)
    await client.sync_round(st, relayed.hub_url)
    await relayed.settled()
    assert hub_alerts(relayed, "relay") == []
    assert relay_alert.to_report(st) is not None  # an answer is no proof: no echo came, so it goes again
    assert status.gather(st, hub_reachable=None)["relay_alert"]["reported"] is False  # type: ignore[index]

    monkeypatch.undo()  # the hub back up: the village's next rounds carry the report again
    for _ in range(3):
        await client.sync_round(st, relayed.hub_url)
        await relayed.settled()
    raised = hub_alerts(relayed, "relay")
    assert len(raised) == 1 and raised[0][0] == TOWNSHIP and V1 in raised[0][1], raised
    assert relay_alert.to_report(st) is None  # the echo came: said
    current = relay_alert.current(st)
    assert current is not None and current["reported_ms"] > 0


def test_the_hub_records_a_report_once_and_echoes_only_what_it_recorded(relayed: Relayed) -> None:
    store = relayed.world.hub.store
    assert relay_reports.echo(store, V1, asked=False) is None
    assert relay_reports.echo(store, V1, asked=True) == b""  # asked, nothing recorded: this hub echoes
    with store.transaction():
        assert relay_reports.record(store, V1, TOWNSHIP, "bad_acks", 1000, 2000)
        assert not relay_reports.record(store, V1, TOWNSHIP, "bad_acks", 1000, 3000)  # sent again
    echo = relay_reports.echo(store, V1, asked=False)
    assert isinstance(echo, bytes) and len(echo) == 16
    with store.transaction():  # a new report of the same village is a new alert, and the new echo
        assert relay_reports.record(store, V1, TOWNSHIP, "withheld", 5000, 6000)
    assert relay_reports.echo(store, V1, asked=False) not in (None, b"", echo)
    assert len(hub_alerts(relayed, "relay")) == 2


async def test_a_report_carried_on_a_stick_is_settled_by_the_echo_in_the_hub_export(relayed: Relayed) -> None:
    st = relayed.v1
    await caught(relayed)
    stick = relayed.world.root / "stick-up"
    usb_files.export(st, stick)
    assert relay_alert.to_report(st) is not None  # on its way, not yet heard
    hub_usb.import_files(relayed.world.hub, [stick])
    assert [s for s, _ in hub_alerts(relayed, "relay")] == [TOWNSHIP]
    down = relayed.world.root / "stick-down"
    hub_usb.export_files(relayed.world.hub, V1, down)
    usb_files.import_files(st, [down])
    assert relay_alert.to_report(st) is None


def test_a_hub_from_before_the_echo_settles_the_report_by_a_round_as_before(relayed: Relayed) -> None:
    st = relayed.v1
    relay_alert.record(st, "bad_acks", "http://relay", "forged")
    with st.transaction():
        relay_alert.echoed(st, None)  # its pages carry no echo
    relay_alert.reported(st, st.clock())
    assert relay_alert.to_report(st) is None

    relay_alert.record(st, "bad_acks", "http://relay", "forged again")
    with st.transaction():
        relay_alert.echoed(st, b"")  # a hub that echoes, and has recorded nothing yet
    relay_alert.reported(st, st.clock())
    assert relay_alert.to_report(st) is not None  # only its echo settles it now
