"""Which township relay a village goes through, and how a township tells the hub where its relay is.

A township started with ``node serve T --relay-port P --relay-host H`` remembers ``http://H:P`` as the
address its villages reach (not for a wildcard host, which names no address) and says it in its own
signed pull requests (``PullRequest.relay_url``). The hub passes it on, versioned, in the sealed feed
pages of the township's villages (``FeedPage.relay_url``, ``relay_version``); a village keeps the
highest version it has seen, so an old page, replayed, cannot bring back an old address.

A village's own ``--relay`` (``relay_url``) always wins over the learned one (``feed_relay_url``).
"""

from __future__ import annotations

from node.station import Station

RELAY_TIERS = ("township", "street")
_WILDCARDS = ("", "0.0.0.0", "::")


def advertise(st: Station, host: str, port: int) -> str:
    """Remember the address of this township's relay listener, to tell the hub. Outside a transaction."""
    url = "" if host in _WILDCARDS else f"http://{f'[{host}]' if ':' in host else host}:{port}"
    with st.transaction():
        st.meta.set("relay_listen_url", url)
    return url


def announced(st: Station) -> str:
    """What this station's pull requests tell the hub of its relay ('' for a village, or no relay)."""
    return st.meta.text("relay_listen_url") if st.tier in RELAY_TIERS else ""


def learn(st: Station, url: str, version: int) -> bool:
    """A feed page's relay address, taken when its version is above the one held. Inside the caller's
    transaction. True when it replaced what was held."""
    if version <= st.meta.int("feed_relay_version"):
        return False
    st.meta.set("feed_relay_url", url.rstrip("/") if url.startswith(("http://", "https://")) else "")
    st.meta.set("feed_relay_version", version)
    return True


def relay_url(st: Station) -> str:
    """The relay a round goes through when the hub cannot be reached: the village's own, else the feed's."""
    return (st.meta.text("relay_url") or st.meta.text("feed_relay_url")).rstrip("/")
