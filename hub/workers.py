"""`hub serve --workers N`: a supervising process and N serving processes on one port.

The parent binds the listening socket (``hub/server.py``, as one process does) and starts N workers
(``python -m hub.serve_worker``) that inherit it and each run the whole app over their own
connections to the hub folder. It starts nothing else and serves nothing itself: it forwards SIGTERM
and SIGINT, waits for the workers, starts a worker again when one dies without being asked to (with
a log line), and gives up, exit 2, when workers keep dying (``RESTART_LIMIT`` deaths within
``RESTART_WINDOW_S``): a hub that cannot stay up must say so rather than restart forever.

Why one inherited socket rather than ``SO_REUSEPORT`` (a socket per worker):
- a connection waiting in the accept queue belongs to the shared socket, not to a worker: when a
  worker is killed, the others take what was queued. With SO_REUSEPORT the kernel has already hashed
  each connection to one worker's socket, and those queued on the dead worker's socket are reset;
- the kernel hands a connection to whichever worker asks for one first, so a worker busy with a
  long push does not get the next connection anyway; SO_REUSEPORT spreads by a hash of the address,
  busy or not;
- the port is bound once, before any worker starts, so "port in use" stays one clear refusal, and
  no other program of the same user can join the port (SO_REUSEPORT lets one).

The workers are started in a session of their own, so a Ctrl-C in the terminal reaches the parent
only and each worker gets exactly one SIGTERM from it; each also asks Linux to send it SIGTERM when
the parent dies (``nightly_worker.die_with_parent``), so a parent killed with SIGKILL leaves no
workers writing on in the folder (``hub restore`` checks the parent's pid file only).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

from replica.errors import Refused

log = logging.getLogger("sanji.hub")

MAX_WORKERS = 64
RESTART_LIMIT = 5  # unexpected deaths within the window before the parent gives up
RESTART_WINDOW_S = 60.0
STOP_GRACE_S = 30.0  # a worker finishing its requests and its group commit on SIGTERM
POLL_S = 0.1


@dataclass
class Worker:
    slot: int
    proc: subprocess.Popen[bytes]


class Supervisor:
    """Runs ``count`` workers on ``sock`` until a signal says stop; see the module docstring.
    ``options_json`` is what each worker is to serve (``hub.server.ServeOptions.to_json``)."""

    def __init__(self, sock: socket.socket, options_json: str, count: int) -> None:
        self.sock = sock
        self.options_json = options_json
        self.count = count
        self.workers: list[Worker] = []
        self.deaths: list[float] = []  # when workers died unexpectedly, within the window
        self.stopping = False

    def _start(self, slot: int) -> Worker:
        fd = self.sock.fileno()
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.serve_worker", str(fd), str(slot), self.options_json],
            pass_fds=(fd,),
            start_new_session=True,  # a terminal's Ctrl-C reaches the parent, which passes it on once
        )
        log.info("区局工作进程 %d 已启动（进程号 %d）", slot, proc.pid)
        return Worker(slot, proc)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("收到停止信号，正在停止 %d 个区局工作进程", len(self.workers))
        self.stopping = True
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signum)

    def run(self) -> None:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.workers = [self._start(slot) for slot in range(self.count)]
            failed = self._watch()
        finally:
            self.stopping = True
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)
        if failed:
            raise Refused(
                f"区局工作进程反复意外退出（{RESTART_WINDOW_S:.0f} 秒内 {RESTART_LIMIT} 次），服务已停止："
                "请查看上面的日志找出原因（如磁盘已满、数据库损坏），处理后再启动 hub serve"
                " (hub workers keep dying; the hub has stopped)",
                code="workers_failing",
            )
        log.info("区局服务已停止")

    def _watch(self) -> bool:
        """Until asked to stop: start again each worker that died. True when workers keep dying."""
        while not self.stopping:
            time.sleep(POLL_S)
            for i, w in enumerate(self.workers):
                code = w.proc.poll()
                if code is None or self.stopping:
                    continue
                how = f"被信号 {-code} 终止" if code < 0 else f"退出码 {code}"
                now = time.monotonic()
                self.deaths = [t for t in self.deaths if now - t < RESTART_WINDOW_S] + [now]
                if len(self.deaths) >= RESTART_LIMIT:
                    log.error("区局工作进程 %d（进程号 %d）意外退出（%s），不再重新启动", w.slot, w.proc.pid, how)
                    return True
                log.warning("区局工作进程 %d（进程号 %d）意外退出（%s），正在重新启动", w.slot, w.proc.pid, how)
                self.workers[i] = self._start(w.slot)
        return False

    def _stop_all(self) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for w in self.workers:
            try:
                w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("区局工作进程 %d（进程号 %d）未能按时停止，强制结束", w.slot, w.proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                w.proc.wait()
