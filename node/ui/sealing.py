"""Sealing a station's existing data at its first sign-in, at the window: off the event loop, in
batches, with a page that says how far it is (issue 16).

A station upgraded from before issue 16 keeps its citizens' data in plaintext until the first staff
sign-in seals it (``node/at_rest_arrivals.py``: the migration). At a station with years of
applications that is minutes of work; run on the window's event loop it would freeze every browser,
the status bar and the background sync meanwhile. So when the sign-in gate (``node/ui/signin.py``)
finds more than :data:`INLINE_ROWS` changes still to walk, it starts one job on a worker thread,
through a ``Station`` of its own (its own connection, as sign-in's scrypt has: two threads'
transactions on one connection would interleave), and sends the browser to ``/sealing``:
"正在加密本站已有数据：已完成 N / M", a page that refreshes itself and goes on to where the person was
going once done. Each batch is one transaction (``at_rest_arrivals.reseal``), so a window closed or a
PC switched off mid-way loses nothing: the next sign-in goes on from where it stopped.

A few changes to walk (what arrived since the last request, the usual case) are walked on the loop as
before: a worker thread and a second connection per request would cost more than the walk itself.
Form posts are not held back while the job runs: what they write is sealed as it is written.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from node import at_rest_arrivals
from node.staff_session import StaffSession
from node.station import Station
from node.ui.page import page, safe_back

INLINE_ROWS = 200  # at most this many changes to walk: on the loop, well under a frame's time
# Batches of the worker's walk: each is one write transaction, which the loop's own writes (a sync
# round, a form post) wait for, so it is kept short.
BATCH_ROWS = 100
PATH = "/sealing"
REFRESH_S = 2


@dataclass
class Job:
    """One migration running on its worker thread; read by the progress page."""

    total: int
    done: int = 0
    finished: bool = False
    plaintext: int = 0
    error: str = ""
    task: asyncio.Future[None] | None = field(default=None, repr=False)


# The one job of this window (under "job"): a dict made at setup, since a started app's own keys
# are not to be set any more.
JOBS = web.AppKey("ui_sealing_jobs", dict[str, Job])


def _run(folder: Path, st: Station, session: StaffSession, job: Job) -> None:
    """The migration on the worker thread, through a station of its own (same folder, same clock)."""
    mine = Station(folder, clock=st.clock)
    mine.session = session
    try:
        out = at_rest_arrivals.on_sign_in(mine, progress=lambda n: setattr(job, "done", n), chunk=BATCH_ROWS)
        job.plaintext = out["plaintext"]
    finally:
        mine.session = None  # the person's session is the window's, not this station's to end
        mine.close()


def _start(app: web.Application, st: Station, session: StaffSession, total: int) -> Job:
    job = Job(total)

    def finished(task: asyncio.Future[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            job.error = str(exc)
        job.finished = True

    job.task = asyncio.ensure_future(asyncio.to_thread(_run, st.folder, st, session, job))
    job.task.add_done_callback(finished)
    app[JOBS]["job"] = job
    return job


def _running(app: web.Application) -> Job | None:
    job = app[JOBS].get("job")
    return job if job is not None and not job.finished else None


def _to_progress(request: web.Request) -> web.Response:
    back = safe_back(request.path_qs)
    return web.Response(status=303, headers={"Location": f"{PATH}?next={quote(back, safe='')}"})


async def gate(request: web.Request, st: Station, session: StaffSession) -> web.StreamResponse | None:
    """Seal what is due now that someone is signed in (``st.session`` is set). Returns the response
    that sends a page request to the progress page while the migration runs, else None."""
    app = request.app
    page_request = request.method == "GET" and request.path != PATH
    if _running(app) is not None:
        return _to_progress(request) if page_request else None
    if at_rest_arrivals.pending_work(st):
        total = at_rest_arrivals.remaining(st)
        if total > INLINE_ROWS:
            _start(app, st, session, total)
            return _to_progress(request) if page_request else None
    elif st.meta.bytes("at_rest_pub") and not st.meta.get("scrub_due"):
        return None  # the usual request: nothing to seal, no key to draw, no scrub left due
    at_rest_arrivals.on_sign_in(st)  # a few rows, the at-rest key to draw, or a scrub left due
    return None


async def progress(request: web.Request) -> web.StreamResponse:
    back = safe_back(request.query.get("next", "/"))
    if back.startswith(PATH):
        back = "/"
    job = request.app[JOBS].get("job")
    if job is not None and not job.finished:
        done = min(job.done, job.total)
        return await page(request, "sealing.html", job=job, done=done, next_path=back, refresh=REFRESH_S)
    if job is None or not (job.error or job.plaintext):
        raise web.HTTPSeeOther(back)
    request.app[JOBS].pop("job")  # said once: the outcome, then the window as usual
    notice = at_rest_arrivals.BACKUP_NOTICE if job.plaintext else ""
    return await page(request, "sealing.html", job=job, done=job.total, next_path=back, refresh=0, notice=notice)


def setup(app: web.Application) -> None:
    app[JOBS] = {}
    app.router.add_get(PATH, progress)
