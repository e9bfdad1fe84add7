"""One sync round at a time per station folder, across processes (issue 14 item 15).

Two `sanji node sync` at once (or one beside `node serve`'s background loop) both pushed everything:
the hub lost nothing, but the traffic doubled and both printed wrong counts. A round now holds an
exclusive ``flock`` on ``DIR/sync.lock`` for its whole length. The CLI waits a few seconds for a
round already running, then refuses with exit 2; the background loop and the sync button do not
wait: a round is already doing their work. The kernel drops the lock when its holder exits, even on
kill -9, so a crash never leaves a station unable to sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from node import client
from node.station import Station
from replica.errors import Refused

LOCK_FILE = "sync.lock"
CLI_WAIT_S = 5.0
POLL_S = 0.1


class SyncBusy(Refused):
    def __init__(self) -> None:
        super().__init__(
            "另一个同步正在进行（可能是站点窗口的自动同步或另一个 sanji node sync）：它会把数据传完，"
            "本次未重复上传；如需确认，稍后运行 sanji node status",
            code="sync_busy",
        )


@contextlib.asynccontextmanager
async def held(folder: Path, *, wait_s: float = 0.0) -> AsyncIterator[None]:
    """Hold the station's sync lock, waiting at most ``wait_s`` for it; else :class:`SyncBusy`."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if loop.time() >= deadline:
                    raise SyncBusy() from None
                await asyncio.sleep(POLL_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


async def sync_round(st: Station, *, wait_s: float = 0.0, **kwargs: object) -> client.RoundResult:
    """:func:`node.client.sync_round` under the lock."""
    async with held(st.folder, wait_s=wait_s):
        return await client.sync_round(st, **kwargs)  # type: ignore[arg-type]
