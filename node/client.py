"""The station's HTTP link to the hub: it carries node/conversation.py's requests over aiohttp. One sync
round = the hub's key changes, push, pull, then the photos.

Any failure to reach the hub becomes :class:`Unreachable` (exit 3): nothing is lost, the batches stay
in the outbox and the next round sends them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from node import (
    conversation,
    hub_answer,
    purge,
    relay_address,
    relay_alert,
    relay_client,
    relay_forward,
    relay_queue,
    relay_withheld,
    transfer,
    uplink,
)
from node.conversation import PIPELINE_BATCHES, Answer, Progress, Request, drive_async
from node.relay_queue import RELAY_TIERS
from node.station import Station
from protocol.limits import ERROR_BODY_MAX_BYTES, RESPONSE_MAX_BYTES
from replica.errors import Refused, Unreachable
from replica.rejection_words import explain
from sync.outbox import BatchState

TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)


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
    via: str = "hub"  # "relay": the hub was out of reach, the round went through the township's relay
    relayed_batches: int = 0  # batches left at the relay this round
    forwarded: list[str] = field(default_factory=list)  # at a township: what it carried besides counts
    staff: int = 0  # staff account entries the feed applied (a disabled account, say): not in `pulled`


async def _refusal(resp: aiohttp.ClientResponse) -> str:
    body = await hub_answer.read_json(resp)  # at most ERROR_BODY_MAX_BYTES of it
    if isinstance(body, dict):
        return explain(str(body.get("error") or ""), str(body.get("message") or body.get("error") or resp.reason))
    return f"HTTP {resp.status} {resp.reason}"


def carrier(session: aiohttp.ClientSession, url: str) -> Callable[[Request], Awaitable[Answer]]:
    """Carry a conversation's requests (node/conversation.py) to the hub at ``url``: the station's work
    meant for while a request travels runs in a worker thread meanwhile, and is done before the answer
    is handed back (the station's database is touched by one side at a time)."""

    async def send(request: Request) -> Answer:
        building = asyncio.ensure_future(asyncio.to_thread(request.meanwhile)) if request.meanwhile else None
        try:
            async with session.request(
                request.method,
                f"{url}{request.path}",
                data=request.body or None,
                params=dict(request.params) or None,
                headers=dict(request.headers) or None,
            ) as resp:
                if resp.status != 200:
                    if request.kind == "reconcile":  # its refusal is shown as the hub wrote it
                        try:
                            text = await hub_answer.read_body(resp, what="区局的对账说明", cap=ERROR_BODY_MAX_BYTES)
                        except hub_answer.AnswerTooLarge:
                            text = b""
                        return Answer(resp.status, text, text.decode(errors="replace"))
                    return Answer(resp.status, message=await _refusal(resp))
                cap = RESPONSE_MAX_BYTES if request.cap is None else request.cap
                try:
                    return Answer(200, await hub_answer.read_body(resp, what=request.what, cap=cap))
                except hub_answer.AnswerTooLarge as exc:
                    return Answer(200, too_large=exc)
        finally:
            if building is not None:
                await building

    return send


async def push(
    st: Station, session: aiohttp.ClientSession, url: str, progress: Progress | None = None
) -> tuple[int, list[str]]:
    """Offer every unsettled batch (node/conversation.py ``push``). Returns (changes the hub now holds,
    refusal reasons)."""
    return await drive_async(conversation.push(st, progress), carrier(session, url))


async def pull(
    st: Station, session: aiohttp.ClientSession, url: str, progress: Progress | None = None
) -> tuple[int, int, list[str]]:
    """Apply feed pages until the hub says there is no more (node/conversation.py ``pull``). Returns
    (changes, catalogue version, why pages were not applied)."""
    pulled, version, problems, _ = await drive_async(conversation.pull(st, progress), carrier(session, url))
    return pulled, version, problems


def refused_so_far(st: Station) -> list[str]:
    """Reasons the hub gave for batches it refused, newest first (at most three)."""
    rows = st.conn.execute(
        "SELECT DISTINCT reason FROM outbox WHERE state=? AND reason!='' ORDER BY created_ms DESC LIMIT 3",
        (BatchState.REJECTED.value,),
    ).fetchall()
    return [str(r[0]) for r in rows]


async def sync_round(
    st: Station, url: str | None = None, *, retention_days: int | None = None, progress: Progress | None = None
) -> RoundResult:
    url = (url or st.meta.text("hub_url")).rstrip("/")
    started = st.clock()
    if not url:
        raise Refused(
            "本站没有区局地址（只用U盘交换）：请用 sanji node export 导出、sanji node import 导入；"
            "通网后可用 sanji node set-hub 设置地址 (no hub address)"
        )
    forwarded: list[str] = []
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            done = await drive_async(conversation.sync(st, progress), carrier(session, url))
            pushed, refused, pulled = done.pushed, done.refused, done.pulled
            version, feed_problems = done.catalogue_version, done.feed_problems
            blob_round = await transfer.upload_pending(st, session, url)  # after the records; never fatal
            if st.tier in RELAY_TIERS:  # its villages' traffic left at its relay (node/relay_forward.py)
                signer = relay_forward.Signer(st.code, st.keys.sign, st.hub_id)  # its word that it forwarded
                relayed = await relay_forward.forward(st.folder, signer, session, url)
                feed_problems = feed_problems + [f"转发: {e}" for e in relayed.errors]
                forwarded = relayed.notes()
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        # The hub's key history is asked for first, so an unreachable hub stops the round before the
        # push has batched anything: sign the first batches now, so pending changes wait batched (for
        # the next round, `node status` and a USB export) as they did before. Here, on this thread,
        # not in a worker: the station's connection is shared with the staff UI in `node serve`.
        uplink.build_outbox(st, PIPELINE_BATCHES)
        # `node status` and the staff screen show the same sentence the command prints, never the bare
        # exception (kept in the sync log for whoever debugs it).
        gone = hub_answer.unreachable(
            url, exc, f"{st.pending_changes()} 条变更已保存在本站，联网后自动上传（或用 U 盘导出）" + _cargo_words(st)
        )
        with st.transaction():
            st.meta.set("last_error", str(gone))
            st.conn.execute(
                "INSERT INTO sync_log (at_ms, kind, ok, pushed, pulled, detail) VALUES (?, 'round', 0, 0, 0, ?)",
                (st.clock(), str(exc)),
            )
        if relay_address.relay_url(st):  # its own --relay, else the one its feed named
            return await _through_relay(st, gone, retention_days)
        raise gone from exc
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
    relay_alert.reported(st, started)  # the round's pull requests carried it to the hub itself
    relay_withheld.hub_reached(st)  # the feed came directly: no page is owed through the relay
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
        forwarded=forwarded,
        staff=done.staff,
    )


def _cargo_words(st: Station) -> str:
    """At a township, what its villages left at its relay waits too: say so, so nobody thinks it lost."""
    if st.tier not in RELAY_TIERS:
        return ""
    up = sum(int(str(v["up"])) for v in relay_queue.summary_of(st.folder, st.code, st.clock()))
    return f"；下辖村交来的 {up} 个转发件也在本站等候，连上区局后转交" if up else ""


async def _through_relay(st: Station, gone: Unreachable, retention_days: int | None) -> RoundResult:
    """The hub is out of reach: leave the batches and a pull request at the township's relay, and take
    what the hub sent back through it (node/relay_client.py). The relay down too: the hub's error."""
    url = relay_address.relay_url(st)
    alert = relay_alert.paused(st)
    if alert is not None:  # caught misbehaving: the direct link (just tried) or a stick, not the relay
        paused = Unreachable(f"本轮未经乡镇中转站转发：{relay_alert.words(alert)}。{gone}")
        with st.transaction():
            st.meta.set("last_error", str(paused)[:500])
        raise paused
    try:
        rnd = await relay_client.relay_round(st, url, TIMEOUT)
    except Refused as exc:  # the relay would not take it (its quota, a bad answer): shown in status too
        with st.transaction():
            st.meta.set("last_error", f"{gone}；{exc}"[:500])
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise hub_answer.unreachable(
            url,
            exc,
            f"区局和乡镇转发站都连不上；{st.pending_changes()} 条变更已保存在本站，联网后自动上传（或用 U 盘导出）",
        ) from exc
    alert = relay_alert.current(st)
    if rnd.misdeeds and alert is not None:  # named, with what to do, beside the round's own problems
        rnd.problems.append(relay_alert.words(alert))
    detail = "; ".join(rnd.problems)[:500]
    with st.transaction():
        st.meta.set("last_sync", st.clock())
        st.meta.set("last_error", detail)
        st.conn.execute(
            "INSERT INTO sync_log (at_ms, kind, ok, pushed, pulled, detail) VALUES (?, 'relay', ?, ?, ?, ?)",
            (st.clock(), 0 if rnd.problems else 1, rnd.pushed, rnd.pulled, detail or f"via relay {url}"),
        )
    days = purge.DEFAULT_RETENTION_DAYS if retention_days is None else retention_days
    return RoundResult(
        rnd.pushed,
        rnd.pulled,
        conversation.catalogue_version(st),
        st.pending_changes(),
        [],
        {},
        purge.purge(st, days),
        rnd.problems,
        via="relay",
        relayed_batches=rnd.queued,
        staff=rnd.staff,
    )
