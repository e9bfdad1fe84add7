"""The pinyin initials the accept picker finds items by ("zdshbz"), kept by the station server.

pypinyin's table would cost the long-running server about 55 MB for the initials of a few hundred item
and theme names (present/pinyin.py), so the server never imports it: the names it has not seen yet go to
a short-lived child process (``present.pinyin.initials_apart``), on a worker thread so the loop keeps
serving, and the answers are kept for the life of the process. A new catalogue release adds only its
new names. Should the child fail to run, the same initials are worked out in this process instead:
slower to start and larger, but the picker finds the same items either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from aiohttp import web

from present import pinyin
from replica.errors import Refused

log = logging.getLogger(__name__)


class Initials:
    """Name → initials, filled a batch of unseen names at a time."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}
        self._lock = asyncio.Lock()  # one child at a time; a second request waits for the first's answers

    async def of(self, names: Iterable[str]) -> Callable[[str], str]:
        """A lookup that knows every name of ``names`` (the picker's items and themes)."""
        wanted = set(names)
        if not wanted <= self._known.keys():
            async with self._lock:
                missing = sorted(wanted - self._known.keys())
                if missing:
                    self._known.update(zip(missing, await asyncio.to_thread(_work_out, missing), strict=True))
        return self._known.__getitem__


def _work_out(names: list[str]) -> list[str]:
    try:
        return pinyin.initials_apart(names)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("拼音首字母子进程未能运行（%s），改在本进程内计算：内存会多用约 55 MB", exc)
        return [pinyin.initials(n) for n in names]


INITIALS = web.AppKey("ui_initials", Initials)


def setup(app: web.Application) -> None:
    app[INITIALS] = Initials()


def warm(app: web.Application, names: Callable[[], Iterable[str]]) -> None:
    """Work out ``names()``'s initials in the background as soon as the app has started, so the first
    person to open the picker does not wait for the child (about a second on a busy PC). Only the real
    server asks for it (node/server.py); an app made for a test works them out at its first picker."""
    started: list[asyncio.Task[None]] = []

    async def start(_: web.Application) -> None:
        try:
            wanted = list(names())
        except Refused:
            return  # no usable catalogue yet: the picker works them out once there is one
        except Exception:  # never a reason not to serve: the picker works them out when opened
            log.exception("受理页的事项名称未能读出，拼音首字母等打开受理页时再算")
            return
        started.append(asyncio.create_task(_logged(app[INITIALS].of(wanted))))

    async def stop(_: web.Application) -> None:
        for task in started:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


async def _logged(work: Coroutine[Any, Any, object]) -> None:
    try:
        await work
    except Exception:  # the picker tries again when opened; the server goes on either way
        log.exception("拼音首字母未能预先算好，打开受理页时再算")
