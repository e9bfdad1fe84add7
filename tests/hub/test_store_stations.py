"""The contract of :class:`hub.store.HubStore`, written once for every backend: stations and tokens.

Registering, listing and re-registering stations, pinning their keys, revoking them, what ``seen``
records of a station's visits, tiers and children; enrolment tokens, each stored once and usable once.
The rest of the contract and how backends are added are in ``test_store_contract``. Each test's
docstring states the contract point it checks. Values that a backend may represent differently
(SQLite's 0/1 for booleans) are compared through ``bool``.
"""

from __future__ import annotations

import pytest

from hub.store import HubStore, Station

from .store_backends import H1, H2, H3, H4, KEY_A, KEY_B, SEAL_A, SEAL_B, T0, _station_tree

# -- stations ----------------------------------------------------------------------------------


def test_a_new_station_has_no_keys_and_neutral_figures(store: HubStore) -> None:
    """A registered station: given name/tier/parent, no keys, not revoked, never seen, zero figures."""
    _station_tree(store)
    assert store.station("T1-V1") == Station(
        code="T1-V1",
        name="一村",
        tier="village",
        parent="T1",
        sign_pub=None,
        seal_pub=None,
        revoked=False,
        last_seen_ms=None,
        backlog=0,
        catalogue_version=0,
        feed_ack=0,
        last_error="",
    )
    assert store.station("nobody") is None


def test_stations_are_listed_by_code(store: HubStore) -> None:
    """``stations()`` lists every station ordered by code."""
    with store.transaction():
        for code in ("T2", "T1-V2", "T1", "T1-V1"):
            store.add_station(code, code, "township", "", T0)
    assert [s.code for s in store.stations()] == ["T1", "T1-V1", "T1-V2", "T2"]


def test_add_station_upserts_name_tier_parent_and_keeps_keys_and_revocation(store: HubStore) -> None:
    """``add_station`` on an existing code updates name, tier and parent but keeps pinned keys and the
    revocation flag (a re-registration is not a re-enrolment)."""
    _station_tree(store)
    with store.transaction():
        store.set_station_keys("T1-V1", KEY_A, SEAL_A, "kid-a", T0)
        store.revoke("T1-V1")
        store.add_station("T1-V1", "一村(新名)", "community", "T2", T0 + 5)
    st = store.station("T1-V1")
    assert st is not None
    assert (st.name, st.tier, st.parent) == ("一村(新名)", "community", "T2")
    assert (st.sign_pub, st.seal_pub, st.revoked) == (KEY_A, SEAL_A, True)
    assert len(store.stations()) == 5


def test_set_station_keys_pins_keys_and_lifts_revocation(store: HubStore) -> None:
    """``set_station_keys`` replaces both public keys and clears ``revoked``: re-enrolment issues new keys."""
    _station_tree(store)
    with store.transaction():
        store.set_station_keys("T1-V1", KEY_A, SEAL_A, "kid-a", T0)
        assert store.revoke("T1-V1") is True
    assert store.station("T1-V1").revoked is True  # type: ignore[union-attr]
    with store.transaction():
        store.set_station_keys("T1-V1", KEY_B, SEAL_B, "kid-b", T0 + 1)
    st = store.station("T1-V1")
    assert st is not None and (st.sign_pub, st.seal_pub, st.revoked) == (KEY_B, SEAL_B, False)


def test_revoke_reports_whether_the_station_exists(store: HubStore) -> None:
    """``revoke`` returns True for a known station (and marks it), False for an unknown code (and
    creates nothing)."""
    _station_tree(store)
    with store.transaction():
        assert store.revoke("T2-V1") is True
        assert store.revoke("T9") is False
    assert store.station("T2-V1").revoked is True  # type: ignore[union-attr]
    assert store.station("T9") is None
    assert [s.code for s in store.stations() if s.revoked] == ["T2-V1"]


def test_seen_updates_only_what_it_is_given(store: HubStore) -> None:
    """``seen`` always sets ``last_seen_ms``; every other figure passed as None keeps its value
    (COALESCE); ``feed_ack`` only moves forward; an empty error string clears the last error."""
    _station_tree(store)
    with store.transaction():
        store.seen("T1-V1", T0 + 1, backlog=5, catalogue_version=2, feed_ack=40, error="网络中断", skew_ms=-300)
    st = store.station("T1-V1")
    assert st is not None
    assert (st.last_seen_ms, st.backlog, st.catalogue_version, st.feed_ack, st.last_error) == (
        T0 + 1,
        5,
        2,
        40,
        "网络中断",
    )
    with store.transaction():
        store.seen("T1-V1", T0 + 2)
    st = store.station("T1-V1")
    assert st is not None
    assert (st.last_seen_ms, st.backlog, st.catalogue_version, st.feed_ack, st.last_error) == (
        T0 + 2,
        5,
        2,
        40,
        "网络中断",
    )
    with store.transaction():
        store.seen("T1-V1", T0 + 3, backlog=0, feed_ack=10, error="")
    st = store.station("T1-V1")
    assert st is not None
    assert (st.last_seen_ms, st.backlog, st.feed_ack, st.last_error) == (T0 + 3, 0, 40, "")
    with store.transaction():
        store.seen("T1-V1", T0 + 4, feed_ack=41)
    assert store.station("T1-V1").feed_ack == 41  # type: ignore[union-attr]


def test_seen_for_an_unknown_station_changes_nothing(store: HubStore) -> None:
    """``seen`` never creates a station."""
    with store.transaction():
        store.seen("ghost", T0, backlog=3)
    assert store.station("ghost") is None
    assert store.stations() == []


def test_tiers_and_children(store: HubStore) -> None:
    """``tiers`` maps every station code to its tier; ``children`` lists the codes whose parent is the
    given station (order unspecified), empty for a leaf or an unknown code."""
    _station_tree(store)
    assert store.tiers() == {
        "T1": "township",
        "T1-V1": "village",
        "T1-V2": "village",
        "T2": "township",
        "T2-V1": "village",
    }
    assert sorted(store.children("T1")) == ["T1-V1", "T1-V2"]
    assert store.children("T2") == ["T2-V1"]
    assert store.children("T1-V1") == []
    assert store.children("nobody") == []


# -- tokens ------------------------------------------------------------------------------------


def test_token_lookup_by_hash(store: HubStore) -> None:
    """``token`` returns (station, tier, expires_ms, used_ms) with used_ms None until used; None for an
    unknown hash; ``tokens_for`` lists a station's tokens."""
    with store.transaction():
        store.add_token(H1, "T1-V1", "village", T0 + 1000)
        store.add_token(H2, "T1-V1", "village", T0 + 2000)
        store.add_token(H3, "T2", "township", T0 + 3000)
    assert store.token(H1) == ("T1-V1", "village", T0 + 1000, None)
    assert store.token(H4) is None
    assert sorted(store.tokens_for("T1-V1")) == [(H1, T0 + 1000, None), (H2, T0 + 2000, None)]
    assert store.tokens_for("nobody") == []


def test_tokens_work_once(store: HubStore) -> None:
    """``use_token`` is True the first time only, and records when; an unknown token is False."""
    with store.transaction():
        store.add_token(H1, "T1-V1", "village", T0 + 1000)
        assert store.use_token(H1, T0 + 10) is True
        assert store.use_token(H1, T0 + 20) is False
        assert store.use_token(H4, T0 + 20) is False
    assert store.token(H1) == ("T1-V1", "village", T0 + 1000, T0 + 10)
    assert store.tokens_for("T1-V1") == [(H1, T0 + 1000, T0 + 10)]


def test_a_token_hash_is_stored_once(store: HubStore) -> None:
    """Adding the same token hash twice fails (and the failed transaction leaves the first intact)."""
    with store.transaction():
        store.add_token(H1, "T1-V1", "village", T0)
    with pytest.raises(Exception), store.transaction():  # noqa: B017 - each backend raises its own type
        store.add_token(H1, "T2", "township", T0)
    assert store.token(H1) == ("T1-V1", "village", T0, None)
