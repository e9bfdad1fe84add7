"""The leaves the hub and a station keep between reconciliations give the trees a full read of their
scopes gives, night after night, as the district works (issue 20)."""

from __future__ import annotations

import pytest

from hub import nightly
from hub import scope_leaves as hub_leaves
from hub.reconcile_scope import scope_rows
from hub.service import Hub
from node import scope_leaves as node_leaves
from node.station import Station
from replica.scope import CHANGE_COLS, build_tree
from tests.applicants import People

from .conftest import District

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


def _roots(d: District, depth: int) -> tuple[bytes, bytes, bytes, bytes]:
    hub = Hub.open(d.hub_dir)
    try:
        kept_hub = hub_leaves.tree(hub, d.a.code, depth).root()
        full_hub = build_tree(scope_rows(hub, d.a.code), depth).root()
    finally:
        hub.close()
    st = Station(d.a.dir)
    try:
        with st.transaction():
            kept_node = node_leaves.refresh(st.conn).tree(depth).root()
        full_node = build_tree(st.conn.execute(f"SELECT {CHANGE_COLS} FROM changes c").fetchall(), depth).root()
    finally:
        st.close()
    return kept_hub, full_hub, kept_node, full_node


def test_kept_leaves_follow_the_scopes_as_they_grow(district: District, people: People) -> None:
    d = district
    for night in range(3):
        with d.hub.serving():
            for _ in range(4):
                d.a.accept(people)
                d.b.accept(people)
            d.a.sync()
            d.b.sync()
            d.a.sync()  # the other village's changes the township's feed carries
            outcome = d.a.reconcile()
        assert outcome["divergent"] == 0, f"night {night}: the kept trees agree with each other"
        if night == 1:  # the nightly job brings every station's leaves up to date, off the loop
            hub = Hub.open(d.hub_dir)
            try:
                prepared = nightly.run(hub, do_backup=False)["report"]["merkle_leaves"]
            finally:
                hub.close()
            assert prepared["stations"] >= 3
        kept_hub, full_hub, kept_node, full_node = _roots(d, 2)
        assert kept_hub == full_hub and kept_node == full_node
        assert kept_hub == kept_node  # both hold the same changes once synced
