"""The citizen's public tracking page: ``GET /track`` (a form), ``GET /track/{code}`` (the page) and
``GET /v1/track/{code}`` (JSON). No login; what it shows is ``hub/citizen_view.py``'s list and nothing else.

Abuse, and what answers it:
- an unknown code, one not synced yet and one past its retention all get the same 404 and the same
  words, so an answer tells a guesser nothing;
- every answer that looked a code up is held until ``floor_ms`` (50 by default) after the request
  arrived, so a known code and an unknown one take the same time: an unknown code costs a hash and an
  indexed lookup, a known one also reads the record and its history, a few milliseconds in all, well
  under the floor (``tests/hostile/test_tracking_abuse.py`` measures both);
- something that cannot be a code (too long, wrong symbols, Unicode, path characters) is a 400 before
  anything is hashed; a route that does not match is aiohttp's 404;
- an address that asks too often gets 429 with ``Retry-After`` (``hub/web/track_limit.py``);
- every lookup is counted in ``/metrics`` as ``sanji_track_lookups{outcome}``.

The code is looked up and the page rendered in the read model's threads (``hub/reads``), never on the
event loop; the rate limiter and the counters stay on the loop.

Behind a reverse proxy at a sub-path, the page's own links (the form, the stylesheet) take the prefix
from ``X-Forwarded-Prefix``, or from ``base_url`` in ``HUB/track.json`` when the operator set one.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from prometheus_client import Counter

from hub import tracking
from hub.appkeys import HUB
from hub.citizen_view import CitizenView, view
from hub.metrics import REGISTRY
from hub.reads import READS, ReadHub
from hub.tracking import TrackSettings
from hub.web.track_limit import Limiter, client_address
from present.webui import make_env, render
from sync.tracking import MAX_INPUT, grouped, normalize

HUB_FILES = Path(__file__).resolve().parent.parent
NOT_FOUND = "暂无此件信息：如刚在村站受理，请待上传后再查询"
MALFORMED = "查询码格式不对：查询码是受理通知书上的 15 位字母和数字，如 7KQ4M-X2R9P-TDH3W"
LIMITED = "查询过于频繁，请稍后再试"
SPIN_S = 0.002  # the last stretch of the floor, yielded away rather than slept (see _held)
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+){0,8}$")

SETTINGS = web.AppKey("track_settings", TrackSettings)
LIMITER = web.AppKey("track_limiter", Limiter)
LOOKUPS = web.AppKey("track_lookups", Counter)
TRACK_ENV = web.AppKey("track_env", jinja2.Environment)


def _prefix(request: web.Request) -> str:
    base = request.app[SETTINGS].base_url
    if base:
        return urlsplit(base).path.rstrip("/")
    sent = request.headers.get("X-Forwarded-Prefix", "").rstrip("/")
    return sent if len(sent) <= 200 and _PREFIX.match(sent) else ""


def _page(request: web.Request, template: str, status: int, **context: object) -> web.Response:
    resp = render(request.app[TRACK_ENV], template, {"prefix": _prefix(request), **context}, status=status)
    resp.headers["X-Robots-Tag"] = "noindex"  # a tracking page is nobody's search result
    return resp


def _json(status: int, body: dict[str, object]) -> web.Response:
    resp = web.json_response(body, status=status, dumps=_dumps)
    resp.headers.update({"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    return resp


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _limited(request: web.Request) -> float:
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"))
    return request.app[LIMITER].take(address, time.monotonic())


@dataclass(frozen=True)
class Answer:
    status: int  # 200 found, 404 unknown (or not synced, or expired), 400 malformed, 429 limited
    found: CitizenView | None = None
    wait_s: float = 0.0
    hold_until: float = 0.0  # monotonic time before which the answer is not sent

    def retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.wait_s)))}


def _found(hub: ReadHub, key: bytes, compact: str, retention_days: int) -> CitizenView | None:
    """What the citizen may see of the application ``compact`` tracks; None for an unknown code and
    one past its retention alike. Runs in the read model's thread."""
    app_id = tracking.find(hub.store, key, compact)
    if app_id is None:
        return None
    if tracking.expired(hub.records.load("application", app_id).get("status"), hub.clock(), retention_days):
        return None
    return view(hub, app_id)


async def _lookup(request: web.Request, raw: str) -> Answer:
    """One code, counted and rate-limited; the caller holds the answer with :func:`_held`."""
    start = time.monotonic()
    counter = request.app[LOOKUPS]
    wait = _limited(request)
    if wait > 0:
        counter.labels("limited").inc()
        return Answer(429, wait_s=wait)
    compact = normalize(raw) if len(raw) <= MAX_INPUT else None
    if compact is None:
        counter.labels("malformed").inc()
        return Answer(400)
    settings = request.app[SETTINGS]
    key = tracking.key_of(request.app[HUB])  # on the loop: the first call may create the key file
    found = await request.app[READS].run(lambda hub: _found(hub, key, compact, settings.retention_days))
    counter.labels("found" if found is not None else "unknown").inc()
    hold = start + settings.floor_ms / 1000
    return Answer(200, found, hold_until=hold) if found is not None else Answer(404, hold_until=hold)


async def _held(answer: Answer, resp: web.Response) -> web.Response:
    """Send a looked-up answer only at its time floor, once it is built whole (page rendered, JSON
    encoded), so that what a known code costs beyond an unknown one is hidden inside the floor.

    The event loop wakes a sleeper only to the whole millisecond after the time it was asked for,
    counted from when it was asked, which would add back the sub-millisecond work this floor is there
    to hide. So it sleeps to :data:`SPIN_S` short of the floor and yields until the floor itself."""
    coarse = answer.hold_until - SPIN_S - time.monotonic()
    if coarse > 0:
        await asyncio.sleep(coarse)
    while time.monotonic() < answer.hold_until:
        await asyncio.sleep(0)  # other requests run meanwhile
    return resp


async def form(request: web.Request) -> web.StreamResponse:
    typed = request.query.get("code")
    if typed is not None:
        # The form's GET lands here: send the citizen to the page for what they typed.
        compact = normalize(typed) if len(typed) <= MAX_INPUT else None
        if compact is None:
            request.app[LOOKUPS].labels("malformed").inc()
            return _page(request, "track_form.html", 400, error=MALFORMED, typed=typed[:MAX_INPUT])
        raise web.HTTPSeeOther(f"{_prefix(request)}/track/{quote(grouped(compact), safe='')}")
    return _page(request, "track_form.html", 200, error="", typed="")


async def page(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["code"]
    answer = await _lookup(request, raw)
    if answer.status == 429:
        resp = _page(request, "track_form.html", 429, error=LIMITED, typed="")
        resp.headers.update(answer.retry_after())
        return resp
    if answer.status == 400:
        return _page(request, "track_form.html", 400, error=MALFORMED, typed=raw[:MAX_INPUT])
    code = grouped(normalize(raw) or "")
    resp = await request.app[READS].run(
        lambda _hub: _page(request, "track.html", answer.status, v=answer.found, code=code, neutral=NOT_FOUND)
    )
    return await _held(answer, resp)


async def api(request: web.Request) -> web.StreamResponse:
    answer = await _lookup(request, request.match_info["code"])
    if answer.found is not None:
        return await _held(answer, _json(200, answer.found.to_json()))
    if answer.status == 429:
        resp = _json(429, {"error": "rate_limited", "message": LIMITED})
        resp.headers.update(answer.retry_after())
        return resp
    if answer.status == 400:
        return _json(400, {"error": "malformed", "message": MALFORMED})
    return await _held(answer, _json(404, {"error": "not_found", "message": NOT_FOUND}))


def add_track_routes(app: web.Application, folder: Path) -> None:
    """Mount the public pages of the hub in ``folder``. Call after ``add_metrics``: the lookups are
    counted in its registry."""
    settings = TrackSettings.read(folder)
    app[SETTINGS] = settings
    app[LIMITER] = Limiter(settings.per_minute, settings.burst)
    app[LOOKUPS] = Counter(
        "sanji_track_lookups", "Public tracking lookups, by outcome", ["outcome"], registry=app[REGISTRY]
    )
    app[TRACK_ENV] = make_env(HUB_FILES / "templates")
    app.router.add_get("/track", form)
    app.router.add_get("/track/{code}", page)
    app.router.add_get("/v1/track/{code}", api)
