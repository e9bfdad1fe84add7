"""The address of each township's relay listener, learned from the township's own signed pull requests
and passed on, versioned, in the feed pages of its villages (issue 17: "or learned from the feed").

The address is the township's signed word (``PullRequest.relay_url``), not the ``X-Sanji-Relay`` label
anyone can write: a stranger cannot point a township's villages at a relay of its own. It is kept in
``hub_meta`` under ``relay_url:CODE`` with a version that only grows (the hub's ms when it changed), so
a village that holds a newer one never takes an older one from a replayed page.

A township with no address to tell says '' (a withdrawal): the hub keeps ``url`` '' under a new version,
so its villages' pages tell them to forget the address they learned, and a replayed older page cannot
bring it back. A township from before the withdrawal says nothing, and changes nothing.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from hub.store.stations import Station
from protocol.feed import RELAY_URL_MAX

RELAY_TIERS = ("township", "street")


class MetaStore(Protocol):
    """What of the hub store this needs (either backend)."""

    def station(self, code: str) -> Station | None: ...
    def get_meta(self, key: str, default: object = None) -> object: ...
    def set_meta(self, key: str, value: object) -> None: ...


def _key(code: str) -> str:
    return f"relay_url:{code}"


def learn(store: MetaStore, township: str, url: str, now_ms: int) -> bool:
    """Take a township's word for its relay address ('': it has none now, withdraw the one held). True
    when it changed."""
    parts = urlsplit(url)
    if url and (len(url) > RELAY_URL_MAX or parts.scheme not in ("http", "https") or not parts.hostname):
        return False
    if url and parts.hostname in ("0.0.0.0", "::"):  # names no address a village could reach (node/relay_address.py)
        return False
    station = store.station(township)
    if station is None or station.tier not in RELAY_TIERS or station.revoked:
        return False
    held = store.get_meta(_key(township))
    version = 0
    if isinstance(held, dict):
        if held.get("url") == url:
            return False  # the same address, or a withdrawal already recorded: no new version
        version = int(held.get("version", 0))
    elif not url:
        return False  # nothing was ever told: nothing to withdraw
    store.set_meta(_key(township), {"url": url, "version": max(now_ms, version + 1)})
    return True


def for_station(store: MetaStore, station: Station) -> tuple[str, int]:
    """(address, version) of the relay of ``station``'s township, for its feed page: ('', version) once
    withdrawn, ('', 0) when none was ever told."""
    if not station.parent or station.tier in RELAY_TIERS or station.tier == "field":
        return "", 0
    held = store.get_meta(_key(station.parent))
    if not isinstance(held, dict):
        return "", 0
    return str(held.get("url", "")), int(held.get("version", 0))
