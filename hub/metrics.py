"""``GET /metrics``: the hub in Prometheus text format, one registry per app (no global state).

Two sources. Totals that must survive restarts and count USB imports as well as HTTP pushes (batches
by result, rejections by reason, changes applied, open conflicts, quarantine, stations by last-seen
age) are read at scrape time by :class:`StoreCollector`, through the read model (``hub/reads``): the
registry is encoded in its thread, so the scrape's SQL never runs on the event loop. What only the running process
sees (how long a push takes to ingest, how many feed pulls it served) is measured by a middleware
around the two sync routes, which leaves their handlers untouched.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hub.reads import READS, ReadHub

REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
INGEST = web.AppKey("metrics_ingest", Histogram)
FEED = web.AppKey("metrics_feed", Counter)

# Last-seen age buckets, in the words an operator uses: within an hour, a day, a week, longer, never.
AGE_BUCKETS = (("1h", 3_600_000), ("1d", 86_400_000), ("7d", 7 * 86_400_000))
TIERS = ("township", "street", "village", "community", "field")
# Rejection reasons are stored as "code: message"; only known codes become label values, so a peer
# cannot blow up the series count by inventing reasons.
REASON_CODES = frozenset(
    {
        "malformed",
        "too_large",
        "unsupported_version",
        "unknown_key",
        "bad_signature",
        "wrong_recipient",
        "body_digest_mismatch",
        "decrypt_failed",
        "invalid",
        "revoked",
        "enrolment_refused",
        "unauthenticated",
        "stale",
        "forbidden",
        "rejected",
        "unproven_relay",  # a relay label without the township's proof (hub/relay_proof.py): not a request refused
    }
)


def age_bucket(last_seen_ms: int | None, now_ms: int) -> str:
    if not last_seen_ms:
        return "never"
    age = now_ms - last_seen_ms
    for name, limit in AGE_BUCKETS:
        if age <= limit:
            return name
    return "older"


class StoreCollector(Collector):
    """Reads the hub's tables at scrape time, through the hub of the read model's work under way on
    this thread (:meth:`ReadModel.current`); outside of one (the registry encoded anywhere but in
    :func:`metrics`) it yields nothing rather than read on the caller's thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def _hub(self) -> ReadHub | None:
        reads = self.app.get(READS)
        return reads.current() if reads is not None else None

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        hub = self._hub()
        if hub is None:
            return
        batches = CounterMetricFamily("sanji_batches", "Batches accepted by the hub, by result", labels=["result"])
        for result, n in hub.reads.batches_by_result().items():
            batches.add_metric([result], n)
        yield batches
        rejected = CounterMetricFamily(
            "sanji_batches_rejected", "Requests and files refused, by reason", labels=["reason"]
        )
        counts: dict[str, int] = {}
        for code, n in hub.reads.refusals_by_code().items():
            key = code if code in REASON_CODES else "other"
            counts[key] = counts.get(key, 0) + n
        for key, n in sorted(counts.items()):
            rejected.add_metric([key], n)
        yield rejected
        taken = hub.reads.changes_taken()
        yield CounterMetricFamily(
            "sanji_changes_applied", "Changes applied from stations' batches", value=taken.applied
        )
        yield CounterMetricFamily(
            "sanji_changes_quarantined", "Changes held for review at ingest", value=taken.quarantined
        )
        yield GaugeMetricFamily(
            "sanji_conflicts_open",
            "Conflicts waiting for an operator",
            value=hub.store.open_conflicts(),
        )
        yield GaugeMetricFamily(
            "sanji_quarantine_open",
            "Quarantined items waiting for an operator",
            value=hub.store.open_quarantine(),
        )
        yield GaugeMetricFamily(
            "sanji_applications", "Applications held by the hub", value=hub.store.applications_held()
        )
        alerts = CounterMetricFamily("sanji_security_alerts", "Security alerts raised, by kind", labels=["kind"])
        for kind, n in hub.reads.alerts_by_kind().items():
            alerts.add_metric([kind], n)
        yield alerts
        yield from self._stations(hub)

    def _stations(self, hub: ReadHub) -> Iterator[GaugeMetricFamily]:
        now = hub.clock()
        grid = {(t, b): 0 for t in TIERS for b in ("1h", "1d", "7d", "older", "never")}
        revoked = dict.fromkeys(TIERS, 0)
        backlog = dict.fromkeys(TIERS, 0)
        for s in hub.store.stations():
            if s.tier not in revoked:
                continue
            if s.revoked:
                revoked[s.tier] += 1
                continue
            grid[(s.tier, age_bucket(s.last_seen_ms, now))] += 1
            backlog[s.tier] += s.backlog
        seen = GaugeMetricFamily(
            "sanji_stations", "Stations (not revoked) by tier and time since last seen", labels=["tier", "last_seen"]
        )
        for (tier, bucket), n in grid.items():
            seen.add_metric([tier, bucket], n)
        yield seen
        rev = GaugeMetricFamily("sanji_stations_revoked", "Revoked stations by tier", labels=["tier"])
        back = GaugeMetricFamily(
            "sanji_station_backlog", "Changes stations last reported as not yet sent", labels=["tier"]
        )
        for tier in TIERS:
            rev.add_metric([tier], revoked[tier])
            back.add_metric([tier], backlog[tier])
        yield rev
        yield back


@web.middleware
async def measure(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    path = request.path
    if path not in ("/v1/sync/push", "/v1/sync/pull"):
        return await handler(request)
    start = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if path == "/v1/sync/push":
            request.app[INGEST].observe(time.perf_counter() - start)
        else:
            request.app[FEED].labels("ok" if status < 400 else "refused").inc()


async def metrics(request: web.Request) -> web.Response:
    # The classic text format (0.0.4) unless the scraper asks for OpenMetrics.
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    registry = request.app[REGISTRY]
    body = await request.app[READS].run(lambda _hub: encoder(registry))  # StoreCollector reads in there
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def add_metrics(app: web.Application) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(app))
    app[REGISTRY] = registry
    app[INGEST] = Histogram(
        "sanji_ingest_seconds",
        "Time to ingest one push request",
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    )
    app[FEED] = Counter("sanji_feed_requests", "Feed pulls served, by outcome", ["outcome"], registry=registry)
    # Appended after the errors middleware, so it runs inside it: it times the handler and sees its answer
    # or its exception, and the errors middleware still turns protocol errors into 4xx answers as before.
    app.middlewares.append(measure)
    app.router.add_get("/metrics", metrics)
