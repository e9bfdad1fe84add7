"""The station's HTTP conversation with the hub: enrol, push, pull. One sync round = push, then pull.

Any failure to reach the hub becomes :class:`Unreachable` (exit 3): nothing is lost, the batches stay
in the outbox and the next round sends them again.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from node import feed_quarantine, hub_answer, hubkeys, purge, transfer, uplink
from node.station import Station
from protocol.codec import pack
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from replica.errors import Refused
from sync.session import AckResult, Outgoing, PushRound

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
    # Why pulled pages were not applied this round (an answer over the cap, a page set aside): the
    # rest of the round went on, and `node sync` exits 2 so it is not mistaken for a clean round.
    feed_problems: list[str] = field(default_factory=list)


async def _refusal(resp: aiohttp.ClientResponse) -> str:
    body = await hub_answer.read_json(resp)  # at most ERROR_BODY_MAX_BYTES of it
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or resp.reason)
    return f"HTTP {resp.status} {resp.reason}"


# Told how far a long round has got: (what, done, of) — "push" counts changes, "pull" feed pages.
Progress = Callable[[str, int, int], None]


async def push(
    st: Station, session: aiohttp.ClientSession, url: str, progress: Progress | None = None
) -> tuple[int, list[str]]:
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
            except hub_answer.AnswerTooLarge as exc:
                # The batches stay pending and go again next round (the hub sees duplicates); the
                # pull and the photo uploads still run.
                refused.append(str(exc))
                return pushed, refused
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


async def _offer(
    st: Station,
    session: aiohttp.ClientSession,
    url: str,
    batches: list[tuple[Outgoing, bytes]],
    building: asyncio.Future[int],
) -> tuple[int, list[str], bool]:
    frames = {o.batch_hash: f for o, f in batches}
    sizes = {o.batch_hash: o.last_seq - o.first_seq + 1 for o, _ in batches}
    rnd = PushRound([o for o, _ in batches])
    pushed, refused, gap = 0, [], False
    while (request := rnd.next_request()) is not None:
        body = pack([frames[h] for h in request])
        async with session.post(f"{url}/v1/sync/push", data=body, headers={"Content-Type": CONTENT_TYPE}) as resp:
            if resp.status != 200:
                reason, data = await _refusal(resp), b""
            else:
                reason, data = "", await hub_answer.read_body(resp, what="区局对上传批次的应答")
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
            elif ack.result is AckResult.GAP:
                gap = True
            else:
                refused.append(f"{ack.result.value}: {ack.reason}")
    return pushed, refused, gap


async def pull(
    st: Station, session: aiohttp.ClientSession, url: str, progress: Progress | None = None
) -> tuple[int, int, list[str]]:
    """Apply feed pages until the hub says there is no more. Returns (changes, catalogue version, why
    pages were not applied). A page that cannot be applied is set aside (node/feed_quarantine.py): past
    a genuine one the pull goes on; at one it cannot verify, or an answer over the cap, it stops and
    asks again next round.

    Every pull carries a fresh nonce that the hub answers in the page's signed header. A page that does
    not answer it (a proxy replaying an old genuine page to freeze the station) is refused, and a round
    that reached the hub without one genuine answered page counts in ``stale_rounds``, which `node
    status` turns into "区局数据可能已停更"."""
    pulled = 0
    problems: list[str] = []
    seen: set[tuple[int, int, str]] = set()
    reached = fresh = False
    try:
        for pages in range(1, 10_001):
            after = st.meta.int("feed_cursor")
            # A page that changed nothing (a release alone that we refused) would be sent again and again.
            state = (after, _catalogue_version(st), st.meta.text("hub_generation"))
            if state in seen:
                break
            seen.add(state)
            nonce = os.urandom(16)
            headers = {uplink.REQUEST_HEADER: uplink.pull_request(st, after, nonce)}
            try:
                async with session.get(f"{url}/v1/sync/pull", params={"after": str(after)}, headers=headers) as resp:
                    reached = True
                    if resp.status != 200:
                        raise Refused(f"the hub refused the pull: {await _refusal(resp)}")
                    data = await hub_answer.read_body(resp, what="区局的数据页")
            except hub_answer.AnswerTooLarge as exc:
                feed_quarantine.record(st, None, source="http", reason=str(exc))
                problems.append(str(exc))
                break
            if _unanswered(data, nonce):
                feed_quarantine.record(st, data, source="http", reason=REPLAYED)
                problems.append(REPLAYED)
                break
            page = feed_quarantine.take_page(st, data, source="http")
            if page.problem:
                problems.append(page.problem)
            if page.result is not None:
                pulled += page.result.pulled
                if page.result.catalogue == "refused":
                    problems.append(st.meta.text("catalogue_warning"))
            elif not page.skipped:
                break
            fresh = True  # a genuine page (applied or set aside) that answered this pull
            if not page.more:
                break
            if progress is not None:
                progress("pull", pulled, pages)
    finally:
        if reached:  # the hub (or something claiming to be it) answered: did the feed advance?
            with st.transaction():
                st.meta.set("stale_rounds", 0 if fresh else st.meta.int("stale_rounds") + 1)
    return pulled, _catalogue_version(st), problems


REPLAYED = (
    "区局数据页没有回应本次请求的随机数（可能是被重放的旧页），已拒收 (the page does not answer this "
    "pull's nonce: a replay?)；本站数据可能已停更，请联系区局核查网络线路或代理"
)


def _unanswered(page: bytes, nonce: bytes) -> bool:
    """True when a page's (signed) header does not carry this pull's nonce. A page too damaged to read
    is left to feed_quarantine.take_page, which refuses it with the decoder's reason."""
    try:
        return peek_header(page).get("nonce") != nonce
    except RemoteProtocolError:
        return False


def _catalogue_version(st: Station) -> int:
    return int(st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0)


def refused_so_far(st: Station) -> list[str]:
    """Reasons the hub gave for batches it refused, newest first (at most three)."""
    rows = st.conn.execute(
        "SELECT DISTINCT reason FROM outbox WHERE state='rejected' AND reason!='' ORDER BY created_ms DESC LIMIT 3"
    ).fetchall()
    return [str(r[0]) for r in rows]


async def sync_round(
    st: Station, url: str | None = None, *, retention_days: int | None = None, progress: Progress | None = None
) -> RoundResult:
    url = (url or st.meta.text("hub_url")).rstrip("/")
    if not url:
        raise Refused("this station has no hub address (USB-only); use `sanji node export` and `import`")
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            # The hub's key changes first: its answers and pages may be signed by a key only they name.
            await hubkeys.refresh(st, session, url)
            hubkeys.check(st)
            pushed, refused = await push(st, session, url, progress)
            # Pages that could not be applied are reported, not raised: the photos still go up.
            pulled, version, feed_problems = await pull(st, session, url, progress)
            blob_round = await transfer.upload_pending(st, session, url)  # after the records; never fatal
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        # The hub's key history is asked for first, so an unreachable hub stops the round before the
        # push has batched anything: sign the first batches now, so pending changes wait batched (for
        # the next round, `node status` and a USB export) as they did before. Here, on this thread,
        # not in a worker: the station's connection is shared with the staff UI in `node serve`.
        uplink.build_outbox(st, PIPELINE_BATCHES)
        with st.transaction():
            st.meta.set("last_error", f"hub unreachable: {exc.__class__.__name__}: {exc}")
            st.conn.execute(
                "INSERT INTO sync_log (at_ms, kind, ok, pushed, pulled, detail) VALUES (?, 'round', 0, 0, 0, ?)",
                (st.clock(), str(exc)),
            )
        raise hub_answer.unreachable(
            url, exc, f"{st.pending_changes()} 条变更已保存在本站，联网后自动上传（或用 U 盘导出）"
        ) from exc
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
        st.meta.set("last_error", "; ".join(refused + feed_problems)[:500])
        st.conn.execute(
            "INSERT INTO sync_log (at_ms, kind, ok, pushed, pulled, detail) VALUES (?, 'round', ?, ?, ?, ?)",
            (st.clock(), 0 if feed_problems else 1, pushed, pulled, "; ".join(refused + feed_problems)[:500]),
        )
    days = purge.DEFAULT_RETENTION_DAYS if retention_days is None else retention_days
    return RoundResult(
        pushed,
        pulled,
        version,
        st.pending_changes(),
        refused,
        blob_round.to_dict(),
        purge.purge(st, days),
        feed_problems,
    )
