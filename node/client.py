"""The station's HTTP conversation with the hub: enrol, push, pull. One sync round = push, then pull.

Any failure to reach the hub becomes :class:`Unreachable` (exit 3): nothing is lost, the batches stay
in the outbox and the next round sends them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from node import hubkeys, purge, transfer, uplink
from node.station import Station
from protocol.codec import pack, unpack
from replica.errors import Refused, Unreachable
from sync.session import Outgoing, PushRound

CONTENT_TYPE = "application/vnd.sanji.frames+msgpack"
TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)
# Batches built ahead, while the previous request travels and the hub applies it.
PIPELINE_BATCHES = 1


@dataclass
class RoundResult:
    pushed: int
    pulled: int
    catalogue_version: int
    pending: int
    refused: list[str]
    blobs: dict[str, object] = field(default_factory=dict)  # photo uploads: node/transfer.py BlobRound
    purged: dict[str, object] = field(default_factory=dict)  # copies purged after retention: node/purge.py


async def _refusal(resp: aiohttp.ClientResponse) -> str:
    try:
        body = await resp.json(content_type=None)
        return str(body.get("message") or body.get("error") or resp.reason)
    except (ValueError, aiohttp.ContentTypeError):
        return f"HTTP {resp.status} {resp.reason}"


# Told how far a long round has got: (what, done, of) — "push" counts changes, "pull" feed pages.
Progress = Callable[[str, int, int], None]


async def push(st: Station, session: aiohttp.ClientSession, url: str,
               progress: Progress | None = None) -> tuple[int, list[str]]:
    """Offer every unsettled batch. Returns (changes the hub now holds, refusal reasons).

    Batches are built a few at a time, the next ones in a worker thread while a request travels and
    the hub applies it; the station's database is touched by one side at a time (each answer is
    recorded only once the build in flight is done).
    """
    total = st.pending_changes()
    uplink.build_outbox(st, PIPELINE_BATCHES)
    pushed = 0
    refused: list[str] = []
    for _attempt in range(2):  # a second pass only when a gap asked us to resend older batches
        gap = False
        offered: set[bytes] = set()
        while batches := [b for b in uplink.unsettled(st) if b[0].batch_hash not in offered]:
            offered.update(o.batch_hash for o, _ in batches)
            building = asyncio.ensure_future(asyncio.to_thread(uplink.build_outbox, st, PIPELINE_BATCHES))
            try:
                n, reasons, gapped = await _offer(st, session, url, batches, building)
            finally:
                await building
            pushed += n
            refused += reasons
            gap = gap or gapped
            if progress is not None and total:
                progress("push", pushed, total)
        if not gap:
            break
    return pushed, refused


async def _offer(st: Station, session: aiohttp.ClientSession, url: str, batches: list[tuple[Outgoing, bytes]],
                 building: asyncio.Future[int]) -> tuple[int, list[str], bool]:
    frames = {o.batch_hash: f for o, f in batches}
    sizes = {o.batch_hash: o.last_seq - o.first_seq + 1 for o, _ in batches}
    rnd = PushRound([o for o, _ in batches])
    pushed, refused, gap = 0, [], False
    while (request := rnd.next_request()) is not None:
        body = pack([frames[h] for h in request])
        async with session.post(f"{url}/v1/sync/push", data=body, headers={"Content-Type": CONTENT_TYPE}) as resp:
            data = await resp.read()
            reason = await _refusal(resp) if resp.status != 200 else ""
        await building
        if reason:
            refused.append(reason)
            with st.transaction():
                for h in request:
                    st.conn.execute("UPDATE outbox SET state='rejected', reason=? WHERE hash=?", (reason, h))
            continue
        acks = uplink.read_acks(st, data)
        rnd.receive(acks)
        for ack in acks:
            if ack.batch_hash in rnd.settled:
                pushed += sizes.get(ack.batch_hash, 0)
            elif ack.result.value == "gap":
                gap = True
            else:
                refused.append(f"{ack.result.value}: {ack.reason}")
    return pushed, refused, gap


async def pull(st: Station, session: aiohttp.ClientSession, url: str,
               progress: Progress | None = None) -> tuple[int, int]:
    """Apply feed pages until the hub says there is no more. Returns (changes, catalogue version)."""
    pulled = 0
    for pages in range(1, 10_001):
        after = st.meta.int("feed_cursor")
        headers = {uplink.REQUEST_HEADER: uplink.pull_request(st, after)}
        async with session.get(f"{url}/v1/sync/pull", params={"after": str(after)}, headers=headers) as resp:
            if resp.status != 200:
                raise Refused(f"the hub refused the pull: {await _refusal(resp)}")
            data = await resp.read()
        page = uplink.apply_feed(st, data)
        pulled += page.pulled
        if not page.more:
            break
        if progress is not None:
            progress("pull", pulled, pages)
    version = st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0
    return pulled, int(version)


def refused_so_far(st: Station) -> list[str]:
    """Reasons the hub gave for batches it refused, newest first (at most three)."""
    rows = st.conn.execute(
        "SELECT DISTINCT reason FROM outbox WHERE state='rejected' AND reason!='' ORDER BY created_ms DESC LIMIT 3"
    ).fetchall()
    return [str(r[0]) for r in rows]


async def sync_round(st: Station, url: str | None = None, *, retention_days: int | None = None,
                     progress: Progress | None = None) -> RoundResult:
    url = (url or st.meta.text("hub_url")).rstrip("/")
    if not url:
        raise Refused("this station has no hub address (USB-only); use `sanji node export` and `import`")
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            # The hub's key changes first: its answers and pages may be signed by a key only they name.
            await hubkeys.refresh(st, session, url)
            hubkeys.check(st)
            pushed, refused = await push(st, session, url, progress)
            pulled, version = await pull(st, session, url, progress)
            blob_round = await transfer.upload_pending(st, session, url)  # after the records; never fatal
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        with st.transaction():
            st.meta.set("last_error", f"hub unreachable: {exc.__class__.__name__}: {exc}")
            st.conn.execute(
                "INSERT INTO sync_log (at_ms, kind, ok, pushed, pulled, detail) VALUES (?, 'round', 0, 0, 0, ?)",
                (st.clock(), str(exc)),
            )
        raise Unreachable(f"hub at {url} unreachable ({exc.__class__.__name__}); "
                          f"{st.pending_changes()} change(s) stay queued") from exc
    except Refused as exc:
        # A refusal (a revoked station, a feed that does not verify) must be visible in `status` and
        # on the staff screen, not only in the output of the command that hit it.
        with st.transaction():
            st.meta.set("last_error", "; ".join([*refused_so_far(st), str(exc)])[:500])
            st.conn.execute(
                "INSERT INTO sync_log (at_ms, kind, ok, pushed, pulled, detail) VALUES (?, 'round', 0, 0, 0, ?)",
                (st.clock(), str(exc)[:500]),
            )
        raise
    with st.transaction():
        st.meta.set("last_sync", st.clock())
        st.meta.set("enrolled", True)
        st.meta.set("last_error", "; ".join(refused)[:500])
        st.conn.execute(
            "INSERT INTO sync_log (at_ms, kind, ok, pushed, pulled, detail) VALUES (?, 'round', 1, ?, ?, ?)",
            (st.clock(), pushed, pulled, "; ".join(refused)[:500]),
        )
    days = purge.DEFAULT_RETENTION_DAYS if retention_days is None else retention_days
    return RoundResult(pushed, pulled, version, st.pending_changes(), refused, blob_round.to_dict(),
                       purge.purge(st, days))


async def enrol(url: str, *, token: str, station: str, sign_pub: bytes, seal_pub: bytes) -> dict[str, object]:
    body = pack({"token": token, "station": station, "sign_pub": sign_pub, "seal_pub": seal_pub})
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.post(f"{url.rstrip('/')}/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"})
            as resp,
        ):
            if resp.status != 200:
                raise Refused(f"enrolment refused by the hub: {await _refusal(resp)}")
            data = await resp.read()
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise Unreachable(f"hub at {url} unreachable ({exc.__class__.__name__}); check the address and retry") from exc
    answer = unpack(data)
    if not isinstance(answer, dict):
        raise Refused("the hub's enrolment answer is malformed")
    return answer
