"""What the station UI's status bar shows on every page: is the hub reachable, how much is waiting to
go up, when the last sync reached the hub, and what went wrong if it did not.

Reachability is a probe of the hub's ``/healthz`` with a short timeout. A page never waits for it: it
shows the last answer and, when that is stale, starts a fresh probe in the background; the status bar's
script asks ``/status.json`` (which does wait, briefly) a moment after the page loads and then every few
seconds. A successful or failed "sync now" updates the answer too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import web

from node import relay_address, status
from node.station import Station

PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2, connect=1.5)
PAGE_MAX_AGE_S = 5.0  # older than this, a page load starts a background probe
POLL_MAX_AGE_S = 2.0  # older than this, /status.json probes before answering


class HubProbe:
    """The last known answer to "can we reach the hub?" (None: not asked yet, or no hub address)."""

    def __init__(self) -> None:
        self.online: bool | None = None
        self.checked = 0.0
        self.task: asyncio.Task[bool | None] | None = None  # the background probe, kept so it is not collected

    def note(self, online: bool) -> None:
        self.online = online
        self.checked = time.monotonic()

    def refresh_soon(self, url: str, *, max_age: float = PAGE_MAX_AGE_S) -> None:
        stale = self.online is None or time.monotonic() - self.checked >= max_age
        if url and stale and (self.task is None or self.task.done()):
            self.task = asyncio.get_running_loop().create_task(self.check(url, max_age=max_age))

    async def check(self, url: str, *, max_age: float = POLL_MAX_AGE_S) -> bool | None:
        if not url:
            return None
        if self.online is not None and time.monotonic() - self.checked < max_age:
            return self.online
        try:
            async with (
                aiohttp.ClientSession(timeout=PROBE_TIMEOUT) as session,
                session.get(url.rstrip("/") + "/healthz") as resp,
            ):
                self.note(resp.status == 200)
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.note(False)
        return self.online


PROBE = web.AppKey("ui_probe", HubProbe)


async def status_context(app: web.Application, st: Station, *, wait: bool = False) -> dict[str, Any]:
    """The status bar: the station's status (``node/status.py``, what ``sanji node status`` prints) with
    this page's own probe of the hub, which a page never waits for unless ``wait``."""
    url = st.meta.text("hub_url")
    probe = app[PROBE]
    if wait:
        online = await probe.check(url)
    else:
        probe.refresh_soon(url)
        online = probe.online if url else None
    g = status.gather(st, hub_reachable=online)
    last = st.meta.int("last_sync")
    # The keys the templates and /status.json have always had, no more.
    return {
        "station": g["station"],
        "name": g["name"],
        "tier": g["tier"],
        "pending": g["pending"],
        "last_sync_ms": last or None,
        "last_error": g["last_error"],
        "hub_url": url,
        "online": online,
        "usb_only": not url,
        "catalogue_version": g["catalogue_version"],
        "catalogue_expires_at": g["catalogue_expires_at"],
        # The window's wording: staff may go on accepting with an expired catalogue.
        "catalogue_warning": st.meta.text("catalogue_warning")
        or ("事项目录已过期，请尽快同步（仍可继续受理）" if g["catalogue_expired"] else ""),
        "now_ms": st.clock(),
        "photos_pending": g["photos_pending"],
        "freshness_warning": g["freshness_warning"],
        # A township's relay queue (node/relay_queue.py): per village, frames waiting up and down.
        "relay_queue": g["relay_queue"],
        # A village's relay caught misbehaving: the township named, and what to do (node/relay_alert.py).
        "relay_alert": g["relay_alert"],
        # A township that tells its villages no relay address, and what to do (node/relay_address.py).
        "relay_address_warning": g["relay_address_warning"],
        # A village whose township withdrew its relay address: it goes through no relay (node/relay_address.py).
        "relay_withdrawn": relay_address.WITHDRAWN if g["relay_withdrawn"] else "",
    }
