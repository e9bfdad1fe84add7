"""The hub's feed carries a change's author down (issue 16): a township sees 经办人 of its villages'
changes, a village sees who at its township moved its application, and a change without an author
still travels as its eight-element wire. The anti-entropy leaves leave the author out, so a station's
leaves and the hub's agree whether a copy carries it or not (a copy fed down before authors travelled
has none). Applicants are generated (tests/conftest.py)."""

from __future__ import annotations

import pytest

from hub import scope_leaves as hub_leaves
from hub.reconcile_scope import scope_rows
from node import commands
from node import scope_leaves as node_leaves
from node.station import Station
from replica.scope import CHANGE_COLS, build_tree
from tests.conftest import World

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"
ITEM = "360802-0006"  # 临时救助申请: the township decides it, so its changes join the township's feed
DEPTH = 2

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


def _authors(st: Station, number: str) -> list[tuple[str, str]]:
    app_id = commands.find(st, number)
    return [(str(h["origin"]), str(h["author"])) for h in st.records.history(app_id)]


def _roots(world: World, st: Station) -> tuple[bytes, bytes, bytes]:
    """The hub's kept leaves, the station's kept leaves, and the station's from a full read."""
    kept_hub = hub_leaves.tree(world.hub, st.code, DEPTH).root()
    with st.transaction():
        kept_node = node_leaves.refresh(st.conn).tree(DEPTH).root()
    full_node = build_tree(st.conn.execute(f"SELECT {CHANGE_COLS} FROM changes c").fetchall(), DEPTH).root()
    return kept_hub, kept_node, full_node


def test_a_township_sees_who_at_the_village_did_it_and_the_leaves_agree(world: World) -> None:
    township = world.station(TOWNSHIP, "township")
    village = world.station(VILLAGE, "village", TOWNSHIP)
    number = str(commands.accept(village, world.application(ITEM, st=village), author="zhangsan")["number"])
    unsigned = str(world.accept(village, ITEM)["number"])  # a station without accounts: no author
    world.push(village)
    while world.pull(township).more:
        pass
    assert _authors(township, number) == [(VILLAGE, "zhangsan")], "经办人 came down with the change"
    assert _authors(township, unsigned) == [(VILLAGE, "")]

    commands.transition(township, number, "under_review", author="lisi")
    world.push(township)
    while world.pull(village).more:
        pass
    assert _authors(village, number) == [(VILLAGE, "zhangsan"), (TOWNSHIP, "lisi")]

    for st in (township, village):
        kept_hub, kept_node, full_node = _roots(world, st)
        assert kept_hub == kept_node == full_node, f"{st.code}: the station's leaves and the hub's agree"
    assert build_tree(scope_rows(world.hub, TOWNSHIP), DEPTH).root() == _roots(world, township)[0]


def test_a_copy_without_its_author_still_agrees_with_the_hub(world: World) -> None:
    township = world.station(TOWNSHIP, "township")
    village = world.station(VILLAGE, "village", TOWNSHIP)
    commands.accept(village, world.application(ITEM, st=village), author="zhangsan")
    world.push(village)
    while world.pull(township).more:
        pass
    before = _roots(world, township)
    # What a township fed before authors travelled holds: the same change, no author.
    with township.transaction():
        township.conn.execute("UPDATE changes SET author='' WHERE origin=?", (VILLAGE,))
    assert township.conn.execute("SELECT count(*) FROM changes WHERE author<>''").fetchone()[0] == 0
    after = _roots(world, township)
    assert after == before and after[0] == after[2], "the author is not part of a change's digest"


def test_the_feed_wire_has_a_ninth_element_only_with_an_author(world: World) -> None:
    township = world.station(TOWNSHIP, "township")
    village = world.station(VILLAGE, "village", TOWNSHIP)
    commands.accept(village, world.application(ITEM, st=village), author="zhangsan")
    world.accept(village, ITEM)
    world.push(village)
    wires = [w for _, w in world.hub.store.feed_page(township.code, 0, 1000) if w[0] == VILLAGE]
    assert sorted(len(w) for w in wires) == [8, 9]
    assert [w[8] for w in wires if len(w) == 9] == ["zhangsan"]
