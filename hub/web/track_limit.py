"""How often one address may look up tracking codes: a token bucket per address, in memory.

A code has 73 bits; the limit is not what keeps it secret, but it keeps a guesser from loading the hub
and makes any guessing visible (``/metrics``, ``sanji_track_lookups{outcome="limited"}``). A citizen
checking a notice or two never meets it: by default an address may make 20 lookups at once and 10 a
minute after that. Each serving process keeps its own buckets (``hub serve --workers N`` allows N times
as many), and forgets them on restart; that is enough for the purpose.

The address is the peer's, except behind a reverse proxy on the same machine (a loopback peer), whose
``X-Forwarded-For`` names the citizen: its last entry, the one the proxy itself added.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

MAX_ADDRESSES = 100_000  # past this many, full buckets are forgotten first (they hold no debt)


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class Limiter:
    per_minute: float
    burst: int
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def take(self, address: str, now: float) -> float:
        """0 when ``address`` may look up now (one token taken), else the seconds until it may."""
        rate = self.per_minute / 60.0
        b = self.buckets.get(address)
        if b is None:
            if len(self.buckets) >= MAX_ADDRESSES:
                self._forget(now)
            b = self.buckets[address] = Bucket(float(self.burst), now)
        b.tokens = min(float(self.burst), b.tokens + (now - b.at) * rate)
        b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / rate if rate > 0 else 3600.0

    def _forget(self, now: float) -> None:
        rate = self.per_minute / 60.0
        full = [a for a, b in self.buckets.items() if b.tokens + (now - b.at) * rate >= self.burst]
        for a in full or list(self.buckets)[: len(self.buckets) // 2]:
            del self.buckets[a]


def client_address(peer: str | None, forwarded_for: str | None) -> str:
    """Who is asking: the peer, or, when the peer is a proxy on this machine, the address it names."""
    peer = peer or ""
    try:
        loopback = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        loopback = False
    if loopback and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return peer
    return peer
