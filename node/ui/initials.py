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
import logging
import subprocess
from collections.abc import Callable, Iterable

from aiohttp import web

from present import pinyin

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
