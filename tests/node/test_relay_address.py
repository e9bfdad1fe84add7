"""A village learns its township's relay from the feed (node/relay_address.py, hub/relay_address.py):
the township says its relay address in its own signed pull requests, the hub passes it on, versioned,
in its villages' sealed pages, and a village with no ``--relay`` of its own goes through it when the hub
is out of reach. A village's own ``--relay`` always wins; an older version never replaces a newer one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import relay_address as hub_relay
from node import client, relay_address, status
from node.server import create_app as station_app
from node.server import serve
from replica.errors import Refused
from tests.conftest import World
from tests.node.test_relay import TOWNSHIP, V1, Relayed, relay_world


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


async def told(r: Relayed) -> str:
    """The township serves its relay and syncs with the hub, which learns the address. Everything runs on
    one PC here, so the loopback address is told only because it is given as --relay-url."""
    parts = urlsplit(r.relay_url)
    assert parts.hostname is not None and parts.port is not None
    url = relay_address.advertise(r.township, parts.hostname, parts.port, r.relay_url).url
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
    assert relay_address.advertise(relayed.township, "0.0.0.0", 8720).url == ""
    assert relay_address.announced(relayed.township) == ""
    assert relay_address.advertise(relayed.township, "10.1.5.1", 8720).url == "http://10.1.5.1:8720"
    assert relay_address.announced(relayed.township) == "http://10.1.5.1:8720"
    assert relay_address.announced(relayed.v1) is None  # a village says nothing of a relay


# -- never a loopback or wildcard address by default (node/relay_address.py ``choose``) --------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "0.0.0.0", "::", ""])
def test_a_loopback_or_wildcard_host_tells_villages_nothing_and_says_what_to_do(host: str) -> None:
    told = relay_address.choose(host, 8720)
    assert told.url == ""
    assert "未告知下辖村转发地址" in told.note and "--relay-url" in told.note and "http://10.1.2.3:8801" in told.note
    assert any("--relay-url" in line for line in relay_address.startup_words(told))


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("10.1.5.1", "http://10.1.5.1:8720"),
        ("fd00::5", "http://[fd00::5]:8720"),
        ("xiang.lan", "http://xiang.lan:8720"),
    ],
)
def test_a_host_other_pcs_can_reach_is_told_as_it_listens(host: str, url: str) -> None:
    told = relay_address.choose(host, 8720)
    assert told == relay_address.Advertised(url) and relay_address.startup_words(told) == [
        f"告知下辖村的转发地址：{url}（经区局传给各村）"
    ]


def test_relay_url_is_told_as_given_whatever_the_listening_host() -> None:
    assert relay_address.choose("0.0.0.0", 8720, "http://10.1.2.3:8801/") == relay_address.Advertised(
        "http://10.1.2.3:8801"
    )
    assert relay_address.choose("127.0.0.1", 8720, "https://xiang.example:443").url == "https://xiang.example:443"
    # Given on purpose, a loopback address is told (one PC for a training), with a warning for staff.
    loop = relay_address.choose("127.0.0.1", 8720, "http://127.0.0.1:8720")
    assert loop.url == "http://127.0.0.1:8720" and "只有与本站同一台电脑上的村站能用" in loop.note


@pytest.mark.parametrize("url", ["ftp://10.1.2.3", "10.1.2.3:8801", "http://", "http://0.0.0.0:8801", "http://[::]:1"])
def test_a_relay_url_no_village_could_use_is_refused(url: str) -> None:
    with pytest.raises(Refused) as refused:
        relay_address.choose("10.1.5.1", 8720, url)
    assert refused.value.code == "bad_relay_url" and "--relay-url" in str(refused.value)


async def test_a_township_on_loopback_announces_nothing_and_says_so(relayed: Relayed) -> None:
    st = relayed.township
    told = relay_address.advertise(st, "127.0.0.1", 8720)  # `node serve T --relay-port 8720`, the default host
    assert told.url == "" and relay_address.announced(st) == ""
    shown = status.gather(st, hub_reachable=None)
    assert shown["relay_advertised"] == "" and "--relay-url" in str(shown["relay_address_warning"])
    assert "提醒: 未告知下辖村转发地址" in status.text(shown)
    app = station_app(st.folder, 3600.0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as browser:
        html = await (await browser.get("/")).text()
    assert 'id="relay-address"' in html and "--relay-url" in html

    await client.sync_round(st, relayed.hub_url)  # its pull requests say no address
    await relayed.settled()
    await client.sync_round(relayed.v1, relayed.hub_url)
    assert relayed.v1.meta.text("feed_relay_url") == ""  # the village was told nothing

    # Restarted with --relay-url: told, the warning gone.
    told = relay_address.advertise(st, "0.0.0.0", 8720, "http://10.1.5.1:8720")
    shown = status.gather(st, hub_reachable=None)
    assert (shown["relay_advertised"], shown["relay_address_warning"]) == ("http://10.1.5.1:8720", "")
    assert "告知下辖村的转发地址 http://10.1.5.1:8720" in status.text(shown)
    await client.sync_round(st, relayed.hub_url)
    await relayed.settled()
    await client.sync_round(relayed.v1, relayed.hub_url)
    assert relayed.v1.meta.text("feed_relay_url") == "http://10.1.5.1:8720"
    assert status.gather(relayed.v1, hub_reachable=None)["relay_address_warning"] == ""  # a village: none


def test_relay_url_needs_the_relay_port(relayed: Relayed) -> None:
    with pytest.raises(Refused) as refused:
        serve(relayed.township.folder, port=1, interval=60.0, relay_url="http://10.1.5.1:8720")
    assert refused.value.code == "relay_url_without_port"
    with pytest.raises(Refused) as refused:  # refused before anything is bound
        serve(relayed.township.folder, port=1, interval=60.0, relay=("127.0.0.1", 1), relay_url="http://0.0.0.0:1")
    assert refused.value.code == "bad_relay_url"


def test_the_hub_never_passes_on_a_wildcard_address(relayed: Relayed) -> None:
    store = relayed.world.hub.store
    with store.transaction():
        assert not hub_relay.learn(store, TOWNSHIP, "http://0.0.0.0:8720", 1_000)
        assert not hub_relay.learn(store, TOWNSHIP, "http://[::]:8720", 1_000)
    v1 = store.station(V1)
    assert v1 is not None and hub_relay.for_station(store, v1) == ("", 0)
