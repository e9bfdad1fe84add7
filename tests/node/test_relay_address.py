"""A village learns its township's relay from the feed (node/relay_address.py, hub/relay_address.py):
the township says its relay address in its own signed pull requests, the hub passes it on, versioned,
in its villages' sealed pages, and a village with no ``--relay`` of its own goes through it when the hub
is out of reach. A village's own ``--relay`` always wins; an older version never replaces a newer one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest

from hub import relay_address as hub_relay
from node import client, relay_address, status
from tests.conftest import World
from tests.node.test_relay import TOWNSHIP, V1, Relayed, relay_world


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


async def told(r: Relayed) -> str:
    """The township serves its relay and syncs with the hub, which learns the address."""
    parts = urlsplit(r.relay_url)
    assert parts.hostname is not None and parts.port is not None
    url = relay_address.advertise(r.township, parts.hostname, parts.port)
    assert url == r.relay_url
    await client.sync_round(r.township, r.hub_url)
    await r.settled()
    return url


async def test_a_village_learns_its_relay_from_the_feed_and_goes_through_it(relayed: Relayed) -> None:
    url = await told(relayed)
    st = relayed.v1
    assert relay_address.relay_url(st) == ""
    await client.sync_round(st, relayed.hub_url)  # a page of its feed names its township's relay
    assert st.meta.text("feed_relay_url") == url and relay_address.relay_url(st) == url
    shown = status.gather(st, hub_reachable=None)
    assert shown["relay_url"] == "" and shown["relay_url_from_feed"] == url
    assert f"乡镇转发站 {url}（区局告知" in status.text(shown)

    with st.transaction():
        st.meta.set("hub_url", "http://127.0.0.1:9")  # the line to the district is down
    number = relayed.accept(st)
    result = await client.sync_round(st)
    assert result.via == "relay" and result.relayed_batches == 1, result
    await relayed.forward()
    assert relayed.hub_count(number) == 1


async def test_the_villages_own_relay_wins_and_an_old_address_never_comes_back(relayed: Relayed) -> None:
    await told(relayed)
    st = relayed.v1
    with st.transaction():
        st.meta.set("relay_url", "http://10.1.5.1:8720")  # node init … --relay
    await client.sync_round(st, relayed.hub_url)
    assert relay_address.relay_url(st) == "http://10.1.5.1:8720"

    version = st.meta.int("feed_relay_version")
    assert version > 0
    with st.transaction():
        assert not relay_address.learn(st, "http://10.9.9.9:1", version)  # a replayed page: same version
        assert not relay_address.learn(st, "http://10.9.9.9:1", version - 1)
        assert relay_address.learn(st, "http://10.1.5.2:8720", version + 1)  # the township moved
    assert st.meta.text("feed_relay_url") == "http://10.1.5.2:8720"


def test_the_hub_takes_a_relay_address_only_from_a_township(relayed: Relayed) -> None:
    store = relayed.world.hub.store
    with store.transaction():
        assert not hub_relay.learn(store, V1, "http://10.1.5.9:8720", 1_000)  # a village has no relay
        assert not hub_relay.learn(store, TOWNSHIP, "ftp://10.1.5.1", 1_000)
        assert hub_relay.learn(store, TOWNSHIP, "http://10.1.5.1:8720", 1_000)
        assert not hub_relay.learn(store, TOWNSHIP, "http://10.1.5.1:8720", 2_000)  # the same: no new version
        assert hub_relay.learn(store, TOWNSHIP, "http://10.1.5.2:8720", 500)  # a clock behind: still grows
    v1 = store.station(V1)
    assert v1 is not None
    assert hub_relay.for_station(store, v1) == ("http://10.1.5.2:8720", 1_001)
    township = store.station(TOWNSHIP)
    assert township is not None and hub_relay.for_station(store, township) == ("", 0)


def test_a_wildcard_host_is_not_an_address(relayed: Relayed) -> None:
    assert relay_address.advertise(relayed.township, "0.0.0.0", 8720) == ""
    assert relay_address.announced(relayed.township) == ""
    assert relay_address.advertise(relayed.township, "10.1.5.1", 8720) == "http://10.1.5.1:8720"
    assert relay_address.announced(relayed.township) == "http://10.1.5.1:8720"
    assert relay_address.announced(relayed.v1) == ""
