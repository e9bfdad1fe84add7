"""`sanji hub serve`: the aiohttp app and the nightly job, until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from aiohttp import web

from hub import blobindex, nightly
from hub.restore import PID_FILE
from hub.service import Hub
from hub.store import HubStore
from hub.workers import MAX_WORKERS, Supervisor
from replica import listen, schedule
from replica.errors import Refused
from replica.ids import CHINA

log = logging.getLogger("sanji.hub")


def nightly_context(
    when: schedule.When, *, partial_retention_days: int = blobindex.PARTIAL_RETENTION_DAYS
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs the nightly job on schedule while the app lives."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from hub.appkeys import HUB

        hub = app[HUB]
        lock = asyncio.Lock()
        running: list[asyncio.subprocess.Process] = []
        stopping = asyncio.Event()

        async def job(trigger: str) -> None:
            async with lock:
                name = schedule.TRIGGERS.get(trigger, trigger)
                try:
                    # In a process of its own (hub/nightly_worker.py) over its own connection: the
                    # loop keeps answering (/healthz, pushes, pages) while the job checks, re-folds,
                    # reports and backs up, and shares no Python lock with it.
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "hub.nightly_worker",
                        str(hub.folder),
                        trigger,
                        str(partial_retention_days),
                        str(_due_ms(when)),
                        stdout=asyncio.subprocess.PIPE,
                    )
                    running.append(proc)
                    out, _ = await proc.communicate()
                    running.remove(proc)
                    if stopping.is_set():
                        log.info("夜间任务（%s）随区局停止而中止，下次运行时重新开始", name)
                        return
                    if proc.returncode != 0:
                        log.error("夜间任务（%s）失败：工作进程退出码 %s", name, proc.returncode)
                        return
                    result = json.loads(out.decode("utf-8").strip().splitlines()[-1])
                    if result["outcome"] == "skipped":
                        log.info("夜间任务（%s）已由本区局的另一个进程运行，本进程不再重复", name)
                        return
                    log.info("夜间任务（%s）完成：%s，逾期办件 %d 件", name, result["outcome"], result["overdue"])
                except asyncio.CancelledError:
                    return  # the hub is stopping; the cleanup below ends the job's process
                except Exception:
                    log.exception("夜间任务（%s）失败", name)

        created = hub.store.get_meta("created_ms")
        since = schedule.since(nightly.last_run_start(hub), created if isinstance(created, int) else None)
        scheduler = schedule.start(when, job, since)
        yield
        stopping.set()
        scheduler.shutdown(wait=False)
        for proc in list(running):
            # A hub that stops takes its nightly job with it: `hub restore` must find nobody writing.
            # The run stays recorded as running and the next one starts afresh.
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await proc.wait()

    return ctx


def _due_ms(when: schedule.When) -> int:
    """The slot a run starting now is for: the scheduled time it fell due (tonight's 02:00, or the one
    a catch-up makes up for). A drill's ``every:N`` has no common clock across processes: a run begun
    within the last half interval counts as this slot's."""
    now = datetime.now(CHINA)
    due = when.last_due(now)
    if due is None:
        return int((now.timestamp() - (when.every_s or 0) / 2) * 1000)
    return int(due.timestamp() * 1000)


LISTEN_BACKLOG = 4096


@dataclass(frozen=True)
class ServeOptions:
    """What `hub serve` was asked for: the parent reads it once and hands it to every worker process."""

    folder: Path
    host: str
    port: int
    nightly: str
    partial_retention_days: int = blobindex.PARTIAL_RETENTION_DAYS
    allow_unsealed: bool = False

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "folder": str(self.folder)})

    @classmethod
    def from_json(cls, text: str) -> ServeOptions:
        raw = json.loads(text)
        return cls(**{**raw, "folder": Path(raw["folder"])})


def build_app(options: ServeOptions) -> web.Application:
    """The app one serving process runs (the only one, or each of ``--workers N``). Imported here, not
    at the top: the supervising parent of ``--workers N`` serves nothing, and without the app's
    modules (routes, dashboard, templates) it stays at about half the memory of a worker."""
    from hub.app import HubConfig, create_app

    when = schedule.When.parse(options.nightly)
    return create_app(
        HubConfig(
            folder=options.folder,
            host=options.host,
            port=options.port,
            nightly=options.nightly,
            allow_unsealed=options.allow_unsealed,
        ),
        extra_contexts=[nightly_context(when, partial_retention_days=options.partial_retention_days)],
    )


def _ready(folder: Path) -> None:
    """Before anything serves, once, in this process: the schema's migrations and the integrity check,
    then a hub folder's one-time key migration (``keyring.ensure``, in ``Hub.open``). With ``--workers
    N`` the workers then open a folder that is up to date and never race each other to migrate it."""
    store = HubStore.open(folder)
    check = store.quick_check()
    store.close()
    if check != "ok":
        # A refusal, not an internal error: the operator has a clear next step.
        raise Refused(
            f"区局数据库完整性检查未通过，服务未启动：请用 sanji hub restore 从备份恢复"
            f" (integrity check failed: {check})",
            code="integrity_failed",
        )
    Hub.open(folder).close()


def serve(
    folder: Path,
    *,
    host: str,
    port: int,
    nightly: str,
    partial_retention_days: int = blobindex.PARTIAL_RETENTION_DAYS,
    allow_unsealed: bool = False,
    workers: int = 1,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not 1 <= workers <= MAX_WORKERS:
        raise Refused(
            f"工作进程数（--workers）须在 1 到 {MAX_WORKERS} 之间：通常取本机的处理器核数 (got {workers})",
            code="bad_workers",
        )
    options = ServeOptions(folder, host, port, nightly, partial_retention_days, allow_unsealed)
    try:
        schedule.When.parse(nightly)
    except ValueError as exc:
        raise Refused(f"夜间任务时间（--nightly）有误：{exc}", code="bad_nightly") from exc
    _ready(folder)
    # A whole district reconnects at once after an outage: with the default listen backlog (128)
    # the kernel drops the connections beyond it and each client waits a second or more to retry.
    # With --workers N this one socket is shared by the workers (hub/workers.py says why).
    sock = listen.bind(host, port, what=" sanji hub serve 或别的程序", backlog=LISTEN_BACKLOG)
    pid_file = folder / PID_FILE
    pid_file.write_text(str(os.getpid()))
    if allow_unsealed:
        print("警告：本区局接收未加密批次，仅供测试 (WARNING: unsealed batches accepted; test use only)", flush=True)
    try:
        if workers == 1:
            app = build_app(options)
            print(f"区局服务已启动：http://{host}:{port}/（按 Ctrl-C 停止）", flush=True)
            web.run_app(app, sock=sock, print=None, access_log=None, backlog=LISTEN_BACKLOG)
        else:
            print(f"区局服务已启动：http://{host}:{port}/（{workers} 个工作进程，按 Ctrl-C 停止）", flush=True)
            Supervisor(sock, options.to_json(), workers).run()
    finally:
        pid_file.unlink(missing_ok=True)
