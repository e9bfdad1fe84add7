"""A TCP relay that adds a fixed delay each way, so ``bench/pg_driver.py`` can price round trips.

Hub processes on other machines than PostgreSQL pay a network round trip per exchange, and the two
drivers differ exactly there: psycopg's pipeline sends a transaction's independent statements together,
asyncpg waits for each one (except inside ``executemany``). On loopback a round trip costs ~30 µs and
the difference hides; through this relay every byte arrives ``rtt/2`` later in each direction while
the bytes keep flowing (a queue per direction, released at each chunk's due time), which is what a
longer wire does and what ``tc netem`` would do without touching the machine's network settings.

It runs in a process of its own, so its CPU is counted neither as the client's nor as the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
from collections.abc import Iterator


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, data))
    except OSError:
        pass
    queue.put_nowait((0.0, b""))
    with contextlib.suppress(OSError):
        await sender


async def _serve(listen_port: int, target_port: int, delay: float, ready: object) -> None:
    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))

    server = await asyncio.start_server(relay, "127.0.0.1", listen_port)
    ready.set()  # type: ignore[attr-defined]
    async with server:
        await server.serve_forever()


def _main(listen_port: int, target_port: int, delay: float, ready: object) -> None:
    asyncio.run(_serve(listen_port, target_port, delay, ready))


@contextlib.contextmanager
def delayed(target_port: int, rtt_ms: float) -> Iterator[int]:
    """A relay to ``127.0.0.1:target_port`` adding ``rtt_ms`` per round trip; yields its port."""
    from bench.common import free_port

    port = free_port()
    ready = mp.Event()
    proc = mp.Process(target=_main, args=(port, target_port, rtt_ms / 2000, ready), daemon=True)
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the delay relay did not start")
        yield port
    finally:
        proc.terminate()
        proc.join(10)
