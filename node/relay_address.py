"""Which township relay a village goes through, and how a township tells the hub where its relay is.

A township started with ``node serve T --relay-port P`` tells its villages where they reach its relay:
the ``--relay-url`` it was given, else ``http://H:P`` for a ``--relay-host H`` that another PC can
reach. A loopback host (the default 127.0.0.1) or a wildcard one (0.0.0.0, which names no address) is
never told: a village on another PC could never reach it. Then the township tells nothing, and says so
at start-up, in ``node status`` and in its window, naming ``--relay-url``. It says the address in its own
signed pull requests (``PullRequest.relay_url``). The hub passes it on, versioned, in the sealed feed
pages of the township's villages (``FeedPage.relay_url``, ``relay_version``); a village keeps the
highest version it has seen, so an old page, replayed, cannot bring back an old address.

A township with nothing to tell (a loopback or wildcard listener and no ``--relay-url``, or ``node
serve`` started without ``--relay-port``) says '' in its pull requests: a withdrawal, so an address the
hub learned before (the old default ``http://127.0.0.1:P``, say) is no longer passed on. The hub then
sends its villages '' under a new version, and a village that learned the address forgets it and
simply does not go through a relay (its status and window say so).

A village's own ``--relay`` (``relay_url``) always wins over the learned one (``feed_relay_url``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from node.station import Station
from protocol.feed import RELAY_URL_MAX
from replica.errors import Refused

RELAY_TIERS = ("township", "street")
EXAMPLE = "--relay-url http://10.1.2.3:8801"
# A village's words once its township withdrew the address the hub's feed had named (status, window).
WITHDRAWN = (
    "乡镇已撤回经区局告知的转发地址：连不上区局时本站不经乡镇转发，变更保存在本站，可用 U 盘导出；"
    "乡镇重新告知地址后自动恢复"
)


@dataclass(frozen=True)
class Advertised:
    url: str  # what this township tells its villages, through the hub; '' for nothing
    note: str = ""  # what its staff should know: why nothing is told, or that only this PC can use it


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _unspecified(host: str) -> bool:
    ip = _ip(host)
    return not host or (ip is not None and ip.is_unspecified)


def _loopback(host: str) -> bool:
    ip = _ip(host)
    return host.lower().rstrip(".") == "localhost" or (ip is not None and ip.is_loopback)


def choose(host: str, port: int, url: str = "") -> Advertised:
    """What a township listening on ``host``:``port`` tells its villages; ``url`` is its ``--relay-url``.
    Refused for a ``url`` that no village could use."""
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > RELAY_URL_MAX:
            raise Refused(
                f"转发地址（--relay-url）有误：{url[:80]!r}；应是本乡镇所辖村站能访问的转发地址，如 http://10.1.2.3:8801"
                f"（不超过 {RELAY_URL_MAX} 个字符） (give --relay-url as an http(s) URL)",
                code="bad_relay_url",
            )
        if _unspecified(parts.hostname):
            raise Refused(
                f"转发地址（--relay-url）{url} 不是一个可以访问的地址（0.0.0.0 表示“本机全部地址”）：请写村站能访问的"
                f"本机局域网地址，如 {EXAMPLE} (an unspecified address cannot be reached)",
                code="bad_relay_url",
            )
        if _loopback(parts.hostname):  # said on purpose (one PC for a training, say): told, with a warning
            return Advertised(
                url.rstrip("/"),
                f"告知下辖村的转发地址 {url.rstrip('/')} 是本机地址，只有与本站同一台电脑上的村站能用；"
                f"其他电脑上的村站请改用 --relay-url 指定本机的局域网地址，如 {EXAMPLE}",
            )
        return Advertised(url.rstrip("/"))
    if _unspecified(host) or _loopback(host):
        where = f"本机地址 {host}" if _loopback(host) else f"全部地址 {host or '0.0.0.0'}（无法确定村站该连哪一个）"
        return Advertised(
            "",
            f"未告知下辖村转发地址：转发接口监听的是{where}，其他电脑上的村站无从得知该连哪里。"
            f"请重新启动并用 --relay-url 告知村站能访问的地址，如 {EXAMPLE}（或用 --relay-host 监听本机的局域网地址）；"
            "已用 --relay 设置了转发地址的村站不受影响",
        )
    return Advertised(f"http://{f'[{host}]' if ':' in host else host}:{port}")


def advertise(st: Station, host: str, port: int, url: str = "") -> Advertised:
    """Remember what this township tells its villages of its relay listener (see :func:`choose`), to
    say it to the hub in its pull requests, and why it tells nothing, for its staff. Outside a
    transaction."""
    told = choose(host, port, url)
    with st.transaction():
        st.meta.set("relay_listen_url", told.url)
        st.meta.set("relay_listen_note", told.note)
    return told


def not_serving(st: Station) -> None:
    """``node serve`` started without ``--relay-port``: this township serves no relay now, so its pull
    requests withdraw any address it told before. Outside a transaction."""
    if st.tier in RELAY_TIERS and (st.meta.text("relay_listen_url") or st.meta.text("relay_listen_note")):
        with st.transaction():
            st.meta.set("relay_listen_url", "")
            st.meta.set("relay_listen_note", "")


def startup_words(told: Advertised) -> list[str]:
    """What ``node serve`` prints of it at start-up."""
    return ([f"告知下辖村的转发地址：{told.url}（经区局传给各村）"] if told.url else []) + (
        [f"提醒：{told.note}"] if told.note else []
    )


def summary(st: Station) -> dict[str, str]:
    """For ``node status`` and the township's window: the relay address told to its villages, and what
    its staff should know about it ('' at a village, or at a township that never served a relay)."""
    if st.tier not in RELAY_TIERS:
        return {"relay_advertised": "", "relay_address_warning": ""}
    return {
        "relay_advertised": st.meta.text("relay_listen_url"),
        "relay_address_warning": st.meta.text("relay_listen_note"),
    }


def announced(st: Station) -> str | None:
    """What this station's pull requests tell the hub of its relay: a township's address, or '' when it
    has none to tell (a withdrawal of any told before); None for a village, which says nothing."""
    return st.meta.text("relay_listen_url") if st.tier in RELAY_TIERS else None


def learn(st: Station, url: str, version: int) -> bool:
    """A feed page's relay address, taken when its version is above the one held. Inside the caller's
    transaction. True when it replaced what was held."""
    if version <= st.meta.int("feed_relay_version"):
        return False
    st.meta.set("feed_relay_url", url.rstrip("/") if url.startswith(("http://", "https://")) else "")
    st.meta.set("feed_relay_version", version)
    return True


def withdrawn(st: Station) -> bool:
    """A village whose township withdrew the address its feed named, and with no ``--relay`` of its own:
    it goes through no relay now (said in its status and window)."""
    learned = st.meta.text("feed_relay_url")
    return not st.meta.text("relay_url") and not learned and st.meta.int("feed_relay_version") > 0


def relay_url(st: Station) -> str:
    """The relay a round goes through when the hub cannot be reached: the village's own, else the feed's."""
    return (st.meta.text("relay_url") or st.meta.text("feed_relay_url")).rstrip("/")
