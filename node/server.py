"""`sanji node serve`: the staff page on 127.0.0.1 and the background sync loop.

The loop runs a sync round every ``interval`` seconds while the hub answers; when it does not, it
backs off exponentially (capped) with jitter, so a hundred stations coming back after an outage do
not all knock at the same second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from node import nightly, relay_address, sync_lock
from node.relay_queue import RELAY_TIERS
from node.relay_server import create_relay_app
from node.station import Station
from node.ui import add_ui_routes
from node.ui.accept import warm_initials
from node.ui.keys import STATION
from replica import listen, schedule
from replica.errors import Refused, Unreachable

log = logging.getLogger("sanji.node")
MAX_BACKOFF_S = 600.0


def next_delay(failures: int, interval: float, rng: random.Random) -> float:
    """Seconds to wait before the next round: the interval while healthy, else capped exponential
    backoff with full jitter."""
    if failures == 0:
        return interval
    ceiling = min(MAX_BACKOFF_S, interval * (2 ** min(failures, 10)))
    return rng.uniform(interval / 2, ceiling)


async def sync_loop(st: Station, interval: float) -> None:
    failures = 0
    rng = random.Random()
    while True:
        try:
            result = await sync_lock.sync_round(st)  # skips when a CLI sync is already doing the work
            failures = 0
            if result.pushed or result.pulled:
                log.info(
                    "已同步：上传 %d 条，下载 %d 条，待传 %d (synced)", result.pushed, result.pulled, result.pending
                )
        except Unreachable as exc:
            failures += 1
            log.warning("%s", exc)
        except Refused as exc:
            failures += 1
            log.warning("同步被拒：%s (sync refused)", exc)
        await asyncio.sleep(next_delay(failures, interval, rng))


def create_app(
    folder: Path,
    interval: float,
    nightly_at: str = "02:00",
    *,
    clock: Callable[[], int] | None = None,
    relay_sock: socket.socket | None = None,
) -> web.Application:
    """The window and the loop; ``clock`` (ms) is for tests that move time, as ``Station`` takes it.
    ``relay_sock``: a township's relay listener (node/relay_server.py), served beside, never the UI."""
    app = web.Application()

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        st = Station(folder, clock=clock) if clock is not None else Station(folder)
        app[STATION] = st
        task = asyncio.create_task(sync_loop(st, interval))
        scheduler = _nightly(st, nightly_at)
        relay = None
        if relay_sock is not None:
            relay = web.AppRunner(create_relay_app(folder, st.code), access_log=None)
            await relay.setup()
            await web.SockSite(relay, relay_sock).start()
        yield
        if relay is not None:
            await relay.cleanup()
        scheduler.shutdown(wait=False)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        st.close()

    app.cleanup_ctx.append(ctx)
    # The staff UI (node/ui/).
    add_ui_routes(app)
    return app


def _run_nightly(folder: Path, trigger: str) -> dict[str, object]:
    # Its own connection: a SQLite connection must not carry two threads' transactions at once.
    own = Station(folder)
    try:
        return nightly.run(own, trigger)
    finally:
        own.close()


def _nightly(st: Station, nightly_at: str) -> AsyncIOScheduler:
    lock = asyncio.Lock()

    async def job(trigger: str) -> None:
        async with lock:
            try:
                # The job talks to the hub with its own event loop (it is the same code as the CLI's),
                # so it runs in a worker thread; one run at a time, and SQLite serialises the writes.
                result = await asyncio.to_thread(_run_nightly, st.folder, trigger)
                log.info("夜间任务（%s）完成：%s", schedule.TRIGGERS.get(trigger, trigger), result["outcome"])
            except Exception:
                log.exception("夜间任务（%s）失败", schedule.TRIGGERS.get(trigger, trigger))

    since = schedule.since(nightly.last_run_start(st), st.meta.int("created_ms") or None)
    return schedule.start(schedule.When.parse(nightly_at), job, since)


def serve(
    folder: Path,
    *,
    port: int,
    interval: float,
    nightly_at: str = "02:00",
    relay: tuple[str, int] | None = None,
    relay_url: str = "",
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    st = Station(folder)
    from node.store import check

    result = check(st.db)
    tier = st.tier
    st.close()
    if relay is not None and tier not in RELAY_TIERS:
        raise Refused(
            "只有乡镇（街道）站点可以为下辖村转发：本站不能开 --relay-port (only a township relays)",
            code="not_a_township",
        )
    if relay_url and relay is None:
        raise Refused(
            "告诉下辖村的转发地址（--relay-url）须与转发端口 --relay-port 一起使用 (--relay-url needs --relay-port)",
            code="relay_url_without_port",
        )
    if relay is not None:  # a --relay-url no village could use is refused before anything is bound
        relay_address.choose(relay[0], relay[1], relay_url)
    try:  # checked before serving: a typo in --nightly is a refusal, not a failure hours later
        schedule.When.parse(nightly_at)
    except ValueError as exc:
        raise Refused(f"夜间任务时间（--nightly）有误：{exc}", code="bad_nightly") from exc
    if result != "ok":
        # A refusal, not an internal error: staff have a clear next step.
        raise Refused(
            f"本站数据库完整性检查未通过，界面未启动：请用 sanji node restore 从备份恢复"
            f" (integrity check failed: {result})",
            code="integrity_failed",
        )
    # Loopback only: the staff PC is shared, and citizens' data must not be reachable from the LAN.
    sock = listen.bind("127.0.0.1", port, what=" sanji node serve 或别的程序")
    relay_sock = None
    if relay is not None:
        # Its own socket: the villages reach the relay routes, and only those (node/relay_server.py).
        relay_sock = listen.bind(relay[0], relay[1], what=" sanji node serve 或别的程序")
        st = Station(folder)
        try:  # told to the hub in this township's pull requests; the hub tells its villages
            told = relay_address.advertise(st, relay[0], relay[1], relay_url)
        finally:
            st.close()
        print(f"下辖村转发接口已启动：http://{relay[0]}:{relay[1]}/（只有转发接口）", flush=True)
        for line in relay_address.startup_words(told):  # the address told to villages, or why none is
            print(line, flush=True)
    elif tier in RELAY_TIERS:  # no relay served now: an address told before is withdrawn at the next round
        st = Station(folder)
        try:
            relay_address.not_serving(st)
        finally:
            st.close()
    print(f"本站办事界面已启动：http://127.0.0.1:{port}/（仅本机可访问；按 Ctrl-C 停止）", flush=True)
    app = create_app(folder, interval, nightly_at, relay_sock=relay_sock)
    warm_initials(app)  # the accept picker's pinyin initials, before anyone opens it (node/ui/initials.py)
    web.run_app(app, sock=sock, print=None, access_log=None)
