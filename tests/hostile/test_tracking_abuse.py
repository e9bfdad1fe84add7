"""Guessing tracking codes at a real `sanji hub serve`: 10,000 random codes find nothing and one address
is rate-limited; a known code and an unknown one take the same time; malformed codes get a 4xx.

One hub per module, with a village enrolled online and a few applications synced, so there are real
codes to find. Requests go over HTTP from this process (aiohttp's client, keep-alive). The measured
figures are printed (`pytest -s`) for docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from sync.tracking import RANDOM_BYTES, draw
from tests.applicants import People, accept_args
from tests.e2e.conftest import Hub, _init_hub, init_online
from tests.e2e.processes import free_loopback_port, http, ok

GUESSES = 10_000
CONCURRENCY = 32


@dataclass
class Guessed:
    hub: Hub
    known: list[str]


@pytest.fixture(scope="module")
def guessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guessed]:
    root = tmp_path_factory.mktemp("tracking-abuse")
    hub = _init_hub(root / "hub", free_loopback_port())
    try:
        with hub.serving():
            hub.enroll("360802-T01", tier="township")
            village = init_online(hub, root / "village", "360802-T01-01")
        people = People(seed=4242)
        known = [ok(*accept_args(village.dir, people, "360802-0001"))["tracking_code"] for _ in range(8)]
        hub.start()
        assert village.sync().code == 0
        yield Guessed(hub, known)
    finally:
        hub.stop_all()


def restart(g: Guessed, settings: dict[str, object]) -> None:
    """The hub again with other tracking settings (HUB/track.json is read when the app starts)."""
    (g.hub.dir / "track.json").write_text(json.dumps(settings))
    g.hub.stop_all()
    g.hub.start()


async def _get_all(url: str, paths: list[str], headers: list[dict[str, str]]) -> list[tuple[int, str]]:
    queue = list(zip(paths, headers, strict=True))
    out: list[tuple[int, str]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def worker() -> None:
            while queue:
                path, head = queue.pop()
                async with session.get(url + path, headers=head) as resp:
                    await resp.read()
                    out.append((resp.status, resp.headers.get("Retry-After", "")))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return out


def metric(url: str, outcome: str) -> float:
    text = http("GET", url + "/metrics")[1].decode()
    for line in text.splitlines():
        if line.startswith(f'sanji_track_lookups_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_ten_thousand_random_codes_find_nothing_and_one_address_is_rate_limited(guessed: Guessed) -> None:
    restart(guessed, {})  # the defaults: 20 at once, 10 a minute
    url = guessed.hub.url
    codes = [draw(os.urandom(RANDOM_BYTES)) for _ in range(GUESSES)]
    assert not set(codes) & set(guessed.known)

    # Every guess actually looked up: each from its own address, as a botnet behind the hall's proxy.
    spread = [{"X-Forwarded-For": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"} for i in range(GUESSES)]
    started = time.monotonic()
    answers = asyncio.run(_get_all(url, [f"/v1/track/{c}" for c in codes], spread))
    spread_s = time.monotonic() - started
    assert Counter(s for s, _ in answers) == {404: GUESSES}, "a random code was found, or refused otherwise"

    # The same 10,000 from one address: a burst, then 429 with Retry-After for the rest.
    started = time.monotonic()
    answers = asyncio.run(_get_all(url, [f"/track/{c}" for c in codes], [{}] * GUESSES))
    one_s = time.monotonic() - started
    counts = Counter(s for s, _ in answers)
    assert set(counts) == {404, 429}
    allowed = 20 + int(one_s / 6) + 1  # the burst, and one more every 6 s while it ran
    assert counts[404] <= allowed and counts[429] >= GUESSES - allowed
    assert all(1 <= int(after) <= 60 for s, after in answers if s == 429)
    assert metric(url, "found") == 0
    assert metric(url, "unknown") == GUESSES + counts[404]
    assert metric(url, "limited") == counts[429]
    print(
        f"\n10,000 random codes: 0 found; spread over addresses {spread_s:.1f} s ({GUESSES / spread_s:.0f}/s); "
        f"from one address {counts[404]} looked up, {counts[429]} refused with 429 in {one_s:.1f} s"
    )


async def _timed(url: str, paths: list[str]) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as session:
        for i, path in enumerate(paths):
            head = {"X-Forwarded-For": f"192.0.2.{i % 250 + 1}"}
            start = time.perf_counter()
            async with session.get(url + path, headers=head) as resp:
                await resp.read()
            out.append((time.perf_counter() - start) * 1000)
    return out


def _measure(url: str, known: list[str], rounds: int, route: str = "/v1/track/") -> tuple[list[float], list[float]]:
    rng = random.Random(18)
    paths, kinds = [], []
    for _ in range(rounds):  # interleaved, so drift in the machine's load hits both alike
        pair = [("k", route + rng.choice(known)), ("u", route + draw(rng.randbytes(RANDOM_BYTES)))]
        rng.shuffle(pair)
        for kind, path in pair:
            kinds.append(kind)
            paths.append(path)
    times = asyncio.run(_timed(url, paths))
    return [t for t, k in zip(times, kinds, strict=True) if k == "k"], [
        t for t, k in zip(times, kinds, strict=True) if k == "u"
    ]


def _iqr(xs: list[float]) -> float:
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]


@pytest.mark.parametrize("route", ["/v1/track/", "/track/"])
def test_known_and_unknown_codes_take_the_same_time(guessed: Guessed, route: str) -> None:
    url = guessed.hub.url
    restart(guessed, {"burst": 10_000, "per_minute": 100_000, "floor_ms": 0})
    bare_k, bare_u = _measure(url, guessed.known, 150, route)  # no floor: what the work itself costs
    restart(guessed, {"burst": 10_000, "per_minute": 100_000})
    known, unknown = _measure(url, guessed.known, 200, route)
    diff = statistics.median(known) - statistics.median(unknown)
    noise = _iqr(known + unknown)
    print(
        f"\n{route}: without the floor known median {statistics.median(bare_k):.2f} ms, unknown "
        f"{statistics.median(bare_u):.2f} ms; with the 50 ms floor known {statistics.median(known):.2f} ms, "
        f"unknown {statistics.median(unknown):.2f} ms, difference {diff:+.2f} ms, noise (IQR) {noise:.2f} ms"
    )
    assert statistics.median(unknown) >= 50.0
    assert abs(diff) < max(noise, 1.0), (diff, noise)


@pytest.mark.parametrize(
    "path",
    [
        "A" * 5000,
        "%E6%9F%A5%E8%AF%A2%E7%A0%81",  # 查询码
        "%EF%BC%A1%EF%BC%A2%EF%BC%A3%EF%BC%A4%EF%BC%A5-FGHJK-MNPQR",  # full-width ＡＢＣＤＥ
        "..%2F..%2Fhub.db",
        "ABCDE%2FFGHJK%2FMNPQR",
        "ABCDE%5CFGHJK",
        "ABCDE-FGHJK-MNPQR%00",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "ABCDE-FGHJK-MNPQ1",
        "' OR 1=1 --",
    ],
)
def test_malformed_codes_get_a_4xx(guessed: Guessed, path: str) -> None:
    if not (guessed.hub.server and guessed.hub.server.running):
        guessed.hub.start()
    for route in ("/track/", "/v1/track/"):
        status, body = http(
            "GET", guessed.hub.url + route + path.replace(" ", "%20"), headers={"X-Forwarded-For": "198.51.100.7"}
        )
        assert 400 <= status < 500, (route, path, status)
        assert b"<script>" not in body


def test_the_real_codes_are_still_found(guessed: Guessed) -> None:
    for code in guessed.known:
        status, body = http("GET", f"{guessed.hub.url}/v1/track/{code}", headers={"X-Forwarded-For": "198.51.100.8"})
        assert status == 200 and json.loads(body)["status"] == "受理"
