"""A township withdraws a relay address the hub learned before (node/relay_address.py,
hub/relay_address.py), on both backends.

An address once told (the old default ``http://127.0.0.1:P``, say) used to stay at the hub for ever,
because a township with nothing to tell said nothing. Now it says '' in its signed pull request: the hub
records the withdrawal under a new version, its villages' pages carry '' and that version, and a village
that learned the address forgets it and goes through no relay. An old page replayed cannot bring the
address back; a village's own ``--relay`` is untouched; a township from before the withdrawal, which
sends no ``relay_url`` at all, changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import feed as hub_feed
from hub import relay_address as hub_relay
from node import client, relay_address, status, uplink
from node.feed import apply_feed
from node.relay_queue import DB_NAME
from node.server import create_app as station_app
from node.station import Station
from protocol.document import open_document
from protocol.feed import PullRequest
from replica.errors import Unreachable
from tests.conftest import World
from tests.node.test_relay import TOWNSHIP, V1, V2, Relayed, relay_world

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

OWN = "http://10.1.5.1:8720"  # v2's own `node init … --relay`


@pytest.fixture
async def relayed(make_world: Callable[..., World]) -> AsyncIterator[Relayed]:
    async with relay_world(make_world) as r:
        yield r


def held(r: Relayed, code: str) -> tuple[str, int]:
    station = r.world.hub.store.station(code)
    assert station is not None
    return hub_relay.for_station(r.world.hub.store, station)


def pull_body(st: Station) -> PullRequest:
    frame = uplink.pull_frame(st, st.meta.int("feed_cursor"), b"n" * 16)
    own = st.keys.sign.public_key()
    doc = open_document(frame, kind=PullRequest.KIND, recipient=st.hub_id, verify_key=lambda _s, _k: own)
    return PullRequest.from_wire(doc.body)


def relayed_frames(r: Relayed, village: str) -> int:
    conn = sqlite3.connect(r.township.folder / DB_NAME)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM relay_frames WHERE village=?", (village,)).fetchone()[0])
    finally:
        conn.close()


async def test_a_township_restarted_on_loopback_withdraws_and_its_villages_forget(relayed: Relayed) -> None:
    township, v1, v2 = relayed.township, relayed.v1, relayed.v2
    with township.transaction():  # what a township before this change told: its loopback listener
        township.meta.set("relay_listen_url", relayed.relay_url)
    with v2.transaction():
        v2.meta.set("relay_url", OWN)  # node init … --relay
    await client.sync_round(township, relayed.hub_url)
    await relayed.settled()
    told_at = held(relayed, V1)
    assert told_at[0] == relayed.relay_url and told_at[1] > 0
    for st in (v1, v2):
        await client.sync_round(st, relayed.hub_url)
    assert relay_address.relay_url(v1) == relayed.relay_url and not relay_address.withdrawn(v1)
    old_page = hub_feed.feed_page(relayed.world.hub, V1, after=0, catalogue_version=0)  # kept to replay

    # Restarted with `--relay-port P` on the default host and no --relay-url: nothing to tell.
    assert relay_address.advertise(township, "127.0.0.1", 8720).url == ""
    assert pull_body(township).relay_url == ""  # said on the wire: a withdrawal, not silence
    await client.sync_round(township, relayed.hub_url)
    await relayed.settled()
    url, version = held(relayed, V1)
    assert url == "" and version > told_at[1]
    await client.sync_round(township, relayed.hub_url)  # said again: no new version
    await relayed.settled()
    assert held(relayed, V1) == ("", version)

    await client.sync_round(v1, relayed.hub_url)
    assert v1.meta.text("feed_relay_url") == "" and v1.meta.int("feed_relay_version") == version
    assert relay_address.relay_url(v1) == "" and relay_address.withdrawn(v1)
    shown = status.gather(v1, hub_reachable=None)
    assert shown["relay_withdrawn"] and shown["relay_url_from_feed"] == ""
    assert "乡镇转发站: 无（乡镇已撤回" in status.text(shown) and "乡镇转发站 http" not in status.text(shown)
    async with TestClient(TestServer(station_app(v1.folder, 3600.0), host="127.0.0.1")) as browser:
        html = await (await browser.get("/")).text()
    assert 'id="relay-withdrawn"' in html and "不经乡镇转发" in html

    apply_feed(v1, old_page)  # an old page, replayed (by hand or by anyone on the path)
    assert v1.meta.text("feed_relay_url") == "" and v1.meta.int("feed_relay_version") == version

    # The hub out of reach: the village simply does not use a relay; its changes wait here.
    relayed.accept(v1)
    with v1.transaction():
        v1.meta.set("hub_url", "http://127.0.0.1:9")
    with pytest.raises(Unreachable):
        await client.sync_round(v1)
    assert relayed_frames(relayed, V1) == 0 and v1.pending_changes() > 0

    # A village's own --relay wins, before and after.
    await client.sync_round(v2, relayed.hub_url)
    assert v2.meta.int("feed_relay_version") == version and v2.meta.text("feed_relay_url") == ""
    assert relay_address.relay_url(v2) == OWN and not relay_address.withdrawn(v2)
    assert not status.gather(v2, hub_reachable=None)["relay_withdrawn"]

    # Told again (restarted with --relay-url): the villages take it, under a newer version still.
    relay_address.advertise(township, "0.0.0.0", 8720, "http://10.1.5.9:8720")
    await client.sync_round(township, relayed.hub_url)
    await relayed.settled()
    assert held(relayed, V1)[0] == "http://10.1.5.9:8720" and held(relayed, V1)[1] > version


async def test_a_township_serving_no_relay_withdraws_and_one_from_before_changes_nothing(relayed: Relayed) -> None:
    township = relayed.township
    relay_address.advertise(township, "10.1.5.1", 8720)
    await client.sync_round(township, relayed.hub_url)
    await relayed.settled()
    told_at = held(relayed, V2)
    assert told_at[0] == "http://10.1.5.1:8720"

    # A township from before the withdrawal: its pull requests carry no relay_url, and nothing changes.
    old = PullRequest(0, 1, relay_url=None)
    assert "relay_url" not in old.to_wire() and PullRequest.from_wire(old.to_wire()).relay_url is None
    with relayed.world.hub.store.transaction():
        assert not hub_relay.learn(relayed.world.hub.store, "360802-T02", "", 5_000)  # not enrolled: nothing
    assert held(relayed, V2) == told_at

    relay_address.not_serving(township)  # `node serve T` started without --relay-port
    shown = status.gather(township, hub_reachable=None)
    assert (shown["relay_advertised"], shown["relay_address_warning"]) == ("", "")
    assert pull_body(township).relay_url == ""
    await client.sync_round(township, relayed.hub_url)
    await relayed.settled()
    assert held(relayed, V2)[0] == "" and held(relayed, V2)[1] > told_at[1]
    assert pull_body(relayed.v1).relay_url is None  # a village says nothing of a relay of its own


def test_the_hub_withdraws_only_what_it_holds(relayed: Relayed) -> None:
    store = relayed.world.hub.store
    with store.transaction():
        assert not hub_relay.learn(store, TOWNSHIP, "", 1_000)  # nothing told yet: nothing to withdraw
    assert held(relayed, V1) == ("", 0)
    with store.transaction():
        assert hub_relay.learn(store, TOWNSHIP, "http://127.0.0.1:8720", 1_000)
        assert hub_relay.learn(store, TOWNSHIP, "", 900)  # a clock behind: the version still grows
        assert not hub_relay.learn(store, TOWNSHIP, "", 5_000)  # withdrawn already
        assert not hub_relay.learn(store, V1, "", 5_000)  # a village has no relay to withdraw
    assert held(relayed, V1) == ("", 1_001)
