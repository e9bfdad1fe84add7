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

from node import freshness
from node.station import Station
from replica.errors import Refused

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
    try:
        cat = st.catalogue()
        version, expires = cat.version, cat.expires_at
    except Refused:
        version, expires = 0, ""
    url = st.meta.text("hub_url")
    probe = app[PROBE]
    if wait:
        online = await probe.check(url)
    else:
        probe.refresh_soon(url)
        online = probe.online if url else None
    last = st.meta.int("last_sync")
    warning = st.meta.text("catalogue_warning")
    if not warning and expires:
        from replica.ids import iso_from_ms

        if expires < iso_from_ms(st.clock()):
            warning = "事项目录已过期，请尽快同步（仍可继续受理）"
    return {
        "station": st.code,
        "name": st.meta.text("name"),
        "tier": st.tier,
        "pending": st.pending_changes(),
        "last_sync_ms": last or None,
        "last_error": st.meta.text("last_error"),
        "hub_url": url,
        "online": online,
        "usb_only": not url,
        "catalogue_version": version,
        "catalogue_expires_at": expires,
        "catalogue_warning": warning,
        "now_ms": st.clock(),
        "photos_pending": _photos_pending(st),
        # The feed stopped advancing while the hub answers (node/freshness.py): staff must see it here.
        "freshness_warning": freshness.summary(st)["freshness_warning"],
    }


def _photos_pending(st: Station) -> int:
    """On a field device, the photos and scans the hub has not confirmed yet (0 elsewhere)."""
    if st.tier != "field":
        return 0
    from node import blobs

    return len(blobs.pending(st))
