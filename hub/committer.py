"""Group commit for the hub's sync handlers: one writer, one durable commit for many requests.

With ``synchronous=FULL`` every COMMIT waits for the disk, and the handlers run in the event loop, so
one transaction per request means that when hundreds of stations reconnect at once their commits wait
for the disk one after another, with the loop stopped during each wait. Instead a handler hands its
database work to the committer and awaits the answer. The committer runs whatever is queued, each
piece in its own savepoint (a piece that fails rolls back alone, so a batch is still applied whole or
not at all), commits once for the group, and only then answers each handler: nothing is acknowledged
before it is durable. Everything runs on the event loop's thread over the hub's one connection, and a
group never spans an ``await``, so other handlers never see a transaction half done. The statements
(BEGIN, SAVEPOINT, COMMIT) are the store's (``hub.store.GroupTransaction``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from hub.store import GroupTransaction, HubStore

log = logging.getLogger("sanji.hub")
T = TypeVar("T")
MAX_GROUP = 64  # pieces per transaction, so one group never holds the loop for long


def _log_failure(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("bookkeeping write failed: %s", fut.exception())


class Committer:
    """Runs pieces of database work in shared transactions; see the module docstring."""

    def __init__(self, store: HubStore | object) -> None:
        # The store's group transaction. ``hub/app.py`` (not this branch's) still passes the store's
        # connection: wrap that the same way until it passes ``hub.store``.
        self.group = store.group_transaction() if isinstance(store, HubStore) else GroupTransaction(store)  # type: ignore[arg-type]
        self._queue: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.groups = 0
        self.pieces = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, fut in self._queue:
            if not fut.done():
                fut.set_exception(RuntimeError("the hub is shutting down"))
        self._queue.clear()

    def submit(self, piece: Callable[[], T]) -> asyncio.Future[T]:
        """Queue ``piece()`` (synchronous database work that opens no transaction of its own; use
        :meth:`atomic` for an all-or-nothing part). Pieces run in the order they were submitted; the
        future resolves to the piece's result, or its exception, once its group's commit has returned."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((piece, fut))
        self._wake.set()
        return fut

    async def run(self, piece: Callable[[], T]) -> T:
        return await self.submit(piece)

    def later(self, piece: Callable[[], object]) -> None:
        """Queue bookkeeping nobody waits for (when a station was last seen, what it reported): it
        joins the next group, and a failure is logged. Answering a pull must not wait for the disk
        just to note that the station asked."""
        fut = self.submit(piece)
        fut.add_done_callback(_log_failure)

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        """A nested savepoint, for a piece that must keep one part even when another part fails."""
        return self.group.savepoint()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(0)  # handlers that are ready to run add their pieces to this group
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            if not self._queue:
                self._wake.clear()
            self._commit(group)
            await asyncio.sleep(0)  # answers go out before the next group starts

    def _commit(self, group: list[tuple[Callable[[], Any], asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            self.group.begin()
            for piece, fut in group:
                try:
                    with self.group.savepoint():
                        outcomes.append((fut, piece(), None))
                except Exception as exc:  # the piece's own failure goes back to its handler
                    outcomes.append((fut, None, exc))
            self.group.commit()
        except Exception as exc:  # the group could not commit: nothing in it happened
            log.exception("group commit failed")
            self.group.rollback()
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(exc)
            return
        self.groups += 1
        self.pieces += len(group)
        for fut, result, error in outcomes:
            if fut.done():  # the handler went away (client disconnected); the work stands
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)
