"""Group commit for the hub's sync handlers: one writer, one durable commit for many requests, off the
event loop.

With ``synchronous=FULL`` every COMMIT waits for the disk, so one transaction per request means that
when hundreds of stations reconnect at once their commits wait for the disk one after another.
Instead a handler hands its database work to the committer and awaits the answer. The committer runs
whatever is queued, each piece in its own savepoint (a piece that fails rolls back alone, so a batch is
still applied whole or not at all), commits once for the group, and only then answers each handler:
nothing is acknowledged before it is durable.

A group runs in the committer's own thread, over a connection only that thread uses (the serving hub
opens a second ``Hub`` on the same folder for it: ``hub/app.py``). Taking in a batch of 1,000 changes is
about 0.3 s of verifying, judging and folding; on the event loop that was 0.3 s in which ``/healthz``,
the dashboard and every other station waited (issue 20, ``bench year``). Now the loop only queues
pieces and hands out answers. Readers on the loop's own connection see a group's writes only once it
has committed (WAL snapshots); a write on the loop's connection waits for the group's commit, as a
second process's would. The statements (BEGIN, SAVEPOINT, COMMIT) are the store's
(``hub.store.GroupTransaction``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hub.store import GroupTransaction, HubStore

log = logging.getLogger("sanji.hub")
T = TypeVar("T")
MAX_GROUP = 64  # pieces per transaction, so one group's handlers are answered soon


def _log_failure(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("bookkeeping write failed: %s", fut.exception())


Piece = tuple[Callable[[], Any], "asyncio.Future[Any]"]
# What a group came to, computed in the committer's thread and handed to the loop: per piece its
# result or its error, or one error for a group that could not commit.
Outcome = tuple[list[tuple[Any, BaseException | None]], BaseException | None]


class Committer:
    """Runs pieces of database work in shared transactions, in a thread of its own; see the module
    docstring. The store's connection must be used by nothing else while the committer runs (and
    with ``check_same_thread`` off: it was opened on the loop's thread). A bare connection is taken
    too (the committer's own tests), wrapped the same way."""

    def __init__(self, store: HubStore | object) -> None:
        self.group = store.group_transaction() if isinstance(store, HubStore) else GroupTransaction(store)  # type: ignore[arg-type]
        self._queue: list[Piece] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One thread: the connection is used by one thread at a time, and groups commit in order.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sanji-commit")
        self._running: tuple[list[Piece], asyncio.Future[Outcome]] | None = None
        self.groups = 0
        self.pieces = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._running is not None:
            # The group in the thread finishes (it may already have committed): its handlers hear how
            # it ended, and the connection is free before the hub closes it.
            group, running = self._running
            self._settle(group, await running)
            self._running = None
        self._pool.shutdown(wait=True)
        for _, fut in self._queue:
            if not fut.done():
                fut.set_exception(RuntimeError("the hub is shutting down"))
        self._queue.clear()

    def submit(self, piece: Callable[[], T]) -> asyncio.Future[T]:
        """Queue ``piece()`` (synchronous database work on :attr:`conn` that opens no transaction of its
        own; use :meth:`atomic` for an all-or-nothing part). It runs in the committer's thread; pieces
        run in the order they were submitted; the future resolves to the piece's result, or its
        exception, once its group's commit has returned."""
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
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            await asyncio.sleep(0)  # handlers that are ready to run add their pieces to this group
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            if not self._queue:
                self._wake.clear()
            running = loop.run_in_executor(self._pool, self._commit, [piece for piece, _ in group])
            self._running = (group, running)
            # Shielded: stopping the hub cancels this task, not the group in the thread (see stop()).
            outcome = await asyncio.shield(running)
            self._running = None
            self._settle(group, outcome)
            await asyncio.sleep(0)  # answers go out before the next group starts

    def _commit(self, pieces: list[Callable[[], Any]]) -> Outcome:
        """In the committer's thread: the group in one transaction. Futures belong to the loop, so
        this only reports what happened; :meth:`_settle` answers the handlers."""
        results: list[tuple[Any, BaseException | None]] = []
        try:
            self.group.begin()
            for piece in pieces:
                try:
                    with self.group.savepoint():
                        results.append((piece(), None))
                except Exception as exc:  # the piece's own failure goes back to its handler
                    results.append((None, exc))
            self.group.commit()
        except Exception as exc:  # the group could not commit: nothing in it happened
            log.exception("group commit failed")
            self.group.rollback()
            return [], exc
        return results, None

    def _settle(self, group: list[Piece], outcome: Outcome) -> None:
        results, failed = outcome
        if failed is not None:
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(failed)
            return
        self.groups += 1
        self.pieces += len(group)
        for (_, fut), (result, error) in zip(group, results, strict=True):
            if fut.done():  # the handler went away (client disconnected); the work stands
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)
