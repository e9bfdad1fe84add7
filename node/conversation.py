"""The station's conversations with the hub, sans I/O: the sync round and the nightly reconciliation.

Each conversation is a generator: it yields the next :class:`Request` it wants sent and is resumed with
the hub's :class:`Answer` (or closed, when the hub could not be reached: its ``finally`` blocks run as
an exception's would). Everything a round decides and writes happens here, through node/uplink.py,
node/hubkeys.py, node/feed_quarantine.py and node/reconcile.py; node/client.py only carries the
requests over aiohttp, and the fault simulator (tests/sim) carries the very same requests over its
simulated network to the real hub's functions. ``drive`` runs a conversation against any ``send``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from node import feed_quarantine, hubkeys, uplink
from node.hub_answer import AnswerTooLarge
from node.station import Station
from protocol.codec import pack, unpack
from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.reconciliation import ReconcileRequest, SummaryAnswer
from protocol.wire import sign_message
from replica.errors import Refused
from replica.rejection_words import explained
from sync.session import AckResult, PushRound

T = TypeVar("T")
A = TypeVar("A")
CONTENT_TYPE = "application/vnd.sanji.frames+msgpack"
DOCUMENT_TYPE = "application/vnd.sanji.document"
# Batches built ahead, while the previous request travels and the hub applies it.
PIPELINE_BATCHES = 1


@dataclass(frozen=True)
class Request:
    kind: str  # "keys" | "push" | "pull" | "reconcile"
    method: str
    path: str
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    what: str = "区局的应答"  # how an answer over the cap is named to staff
    cap: int | None = None  # the most a station reads of the answer (None: RESPONSE_MAX_BYTES)
    # Work for the station while the request travels (the next batches, built ahead). The carrier
    # runs it to completion before it hands the answer back.
    meanwhile: Callable[[], object] | None = None
    summary: str = ""  # what the request is, for logs and the simulator's trace


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""  # the whole body of a 200 answer; at most ERROR_BODY_MAX_BYTES of another
    message: str = ""  # a refusal's reason (the JSON error's message, or "HTTP <status> <reason>")
    too_large: AnswerTooLarge | None = None  # a 200 answer over the cap, left unread


Conversation = Generator[Request, Answer, T]
Progress = Callable[[str, int, int], None]  # (what, done, of): "push" counts changes, "pull" pages


def drive(conversation: Generator[Request, Answer, T], send: Callable[[Request], Answer]) -> T:
    """Run a conversation to its end over ``send`` (a synchronous carrier: tests, the simulator)."""
    try:
        request = next(conversation)
        while True:
            request = conversation.send(send(request))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        conversation.close()


async def drive_async(conversation: Generator[Request, Answer, T], send: Callable[[Request], Awaitable[Answer]]) -> T:
    """Run a conversation over an asynchronous carrier (node/client.py's aiohttp session)."""
    try:
        request = next(conversation)
        while True:
            request = conversation.send(await send(request))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        conversation.close()


# -- the hub's keys -----------------------------------------------------------------------------------


def refresh_keys(st: Station) -> Conversation[dict[str, object] | None]:
    """Ask the hub for key changes since our list; None when it has none (or predates the route)."""
    version = st.meta.int("hub_keys_version")
    answer = yield Request(
        "keys",
        "GET",
        "/v1/keys",
        params={"after": str(version)},
        what="区局的密钥记录",
        cap=hubkeys.ANSWER_MAX_BYTES,
        summary=f"after={version}",
    )
    if answer.status == 404:
        return None  # a hub from before key rotation: the pinned key still stands
    if answer.too_large is not None:
        raise answer.too_large
    if answer.status != 200:
        raise Refused(
            f"区局未提供密钥记录，本轮未同步 (the hub refused to send its key history: "
            f"HTTP {answer.status}; retry later)"
        )
    try:
        bundle = unpack(answer.body)
    except RemoteProtocolError as exc:
        raise Refused(
            f"区局密钥记录无法解析，未采用 (the hub's key history is malformed: {exc}; call the district)"
        ) from exc
    history = hubkeys.key_history(bundle)
    if not history.docs:
        return None  # nothing new since our list
    return hubkeys.adopt(st, history)


# -- the sync round ---------------------------------------------------------------------------------------


@dataclass
class Round:
    pushed: int
    refused: list[str]
    pulled: int
    catalogue_version: int
    feed_problems: list[str]
    staff: int = 0  # staff account entries the pages applied: news the change count does not show


def sync(
    st: Station,
    progress: Progress | None = None,
    *,
    max_count: int = 64,
    nonce: Callable[[], bytes] = lambda: os.urandom(16),
) -> Conversation[Round]:
    """One sync round's conversation: the hub's key changes first (its answers and pages may be signed
    by a key only they name), then push, then pull."""
    yield from refresh_keys(st)
    hubkeys.check(st)
    pushed, refused = yield from push(st, progress, max_count=max_count)
    # Pages that could not be applied are reported, not raised: the photos still go up.
    pulled, version, problems, staff = yield from pull(st, progress, nonce=nonce)
    return Round(pushed, refused, pulled, version, problems, staff)


# -- push ---------------------------------------------------------------------------------------------


def push(st: Station, progress: Progress | None = None, *, max_count: int = 64) -> Conversation[tuple[int, list[str]]]:
    """Offer every unsettled batch. Returns (changes the hub now holds, refusal reasons).

    Batches are built a few at a time, the next ones while a request travels and the hub applies it;
    each answer is recorded only once that build is done."""
    total = st.pending_changes()
    uplink.build_outbox(st, PIPELINE_BATCHES)
    pushed = 0
    refused: list[str] = []
    for _attempt in range(2):  # a second pass only when a gap asked us to resend older batches
        gap = False
        offered: set[bytes] = set()
        while batches := [b for b in uplink.unsettled(st) if b[0].batch_hash not in offered]:
            offered.update(o.batch_hash for o, _ in batches)
            frames = {o.batch_hash: f for o, f in batches}
            sizes = {o.batch_hash: o.last_seq - o.first_seq + 1 for o, _ in batches}
            ranges = {o.batch_hash: f"{o.epoch}:{o.first_seq}-{o.last_seq}" for o, _ in batches}
            rnd = PushRound([o for o, _ in batches], max_count=max_count)
            meanwhile: Callable[[], object] | None = lambda: uplink.build_outbox(st, PIPELINE_BATCHES)  # noqa: E731
            while (request := rnd.next_request()) is not None:
                answer = yield Request(
                    "push",
                    "POST",
                    "/v1/sync/push",
                    body=pack([frames[h] for h in request]),
                    headers={"Content-Type": CONTENT_TYPE},
                    what="区局对上传批次的应答",
                    meanwhile=meanwhile,
                    summary=",".join(ranges[h] for h in request),
                )
                meanwhile = None
                if answer.too_large is not None:
                    # The batches stay pending and go again next round (the hub sees duplicates); the
                    # pull and the photo uploads still run.
                    refused.append(str(answer.too_large))
                    return pushed, refused
                if answer.status != 200:
                    refused.append(answer.message)
                    uplink.mark_refused(st, request, answer.message)
                    continue
                acks = uplink.read_acks(st, answer.body)
                rnd.receive(acks)
                for ack in acks:
                    if ack.batch_hash in rnd.settled:
                        pushed += sizes.get(ack.batch_hash, 0)
                    elif ack.result is AckResult.GAP:
                        gap = True
                    else:
                        refused.append(f"{ack.result.value}: {explained(ack.reason)}")
            if progress is not None and total:
                progress("push", pushed, total)
        if not gap:
            break
    return pushed, refused


# -- pull ---------------------------------------------------------------------------------------------

REPLAYED = (
    "区局数据页没有回应本次请求的随机数（可能是被重放的旧页），已拒收 (the page does not answer this "
    "pull's nonce: a replay?)；本站数据可能已停更，请联系区局核查网络线路或代理"
)


def pull(
    st: Station, progress: Progress | None = None, *, nonce: Callable[[], bytes] = lambda: os.urandom(16)
) -> Conversation[tuple[int, int, list[str]]]:
    """Apply feed pages until the hub says there is no more. Returns (changes, catalogue version, why
    pages were not applied). A page that cannot be applied is set aside (node/feed_quarantine.py): past
    a genuine one the pull goes on; at one it cannot verify, or an answer over the cap, it stops and
    asks again next round.

    Every pull carries a fresh nonce that the hub answers in the page's signed header. A page that does
    not answer it (a proxy replaying an old genuine page to freeze the station) is refused, and a round
    that reached the hub without one genuine answered page counts in ``stale_rounds``, which `node
    status` turns into "区局数据可能已停更"."""
    pulled = staff = 0
    problems: list[str] = []
    seen: set[tuple[int, int, str]] = set()
    reached = fresh = False
    try:
        for pages in range(1, 10_001):
            after = st.meta.int("feed_cursor")
            # A page that changed nothing (a release alone that we refused) would be sent again and again.
            state = (after, catalogue_version(st), st.meta.text("hub_generation"))
            if state in seen:
                break
            seen.add(state)
            asked = nonce()
            answer = yield Request(
                "pull",
                "GET",
                "/v1/sync/pull",
                params={"after": str(after)},
                headers={uplink.REQUEST_HEADER: uplink.pull_request(st, after, asked)},
                what="区局的数据页",
                summary=f"after={after}",
            )
            reached = True
            if answer.too_large is not None:
                feed_quarantine.record(st, None, source="http", reason=str(answer.too_large))
                problems.append(str(answer.too_large))
                break
            if answer.status != 200:
                raise Refused(f"区局拒绝了本次下载，本轮未下载：{answer.message} (the hub refused the pull)")
            if unanswered(answer.body, asked):
                feed_quarantine.record(st, answer.body, source="http", reason=REPLAYED)
                problems.append(REPLAYED)
                break
            page = feed_quarantine.take_page(st, answer.body, source="http")
            if page.problem:
                problems.append(page.problem)
            if page.result is not None:
                pulled += page.result.pulled
                staff += page.result.staff
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
    return pulled, catalogue_version(st), problems, staff


def unanswered(page: bytes, nonce: bytes) -> bool:
    """True when a page's (signed) header does not carry this pull's nonce. A page too damaged to read
    is left to feed_quarantine.take_page, which refuses it with the decoder's reason."""
    try:
        return peek_header(page).get("nonce") != nonce
    except RemoteProtocolError:
        return False


def catalogue_version(st: Station) -> int:
    return int(st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0)


# -- reconciliation -----------------------------------------------------------------------------------


@dataclass
class Talk:
    """Bytes a reconciliation exchanged so far (requests and answers)."""

    bytes: int = 0


def ask(st: Station, read: Callable[[object], A], op: str, talk: Talk | None = None, **fields: Any) -> Conversation[A]:
    """One signed reconciliation step, the request ``op`` with its ``fields``; the hub's answer, opened
    with the pinned key (and our seal key) and read by ``read`` (that step's answer class)."""
    req = sign_message(
        ReconcileRequest(op, st.clock(), **fields), signer=st.code, recipient=st.hub_id, signing_key=st.keys.sign
    ).frame
    answer = yield Request(
        "reconcile",
        "POST",
        "/v1/reconcile",
        body=req,
        headers={"Content-Type": DOCUMENT_TYPE},
        what="区局的对账应答",
        summary=op,
    )
    if answer.status != 200:
        raise Refused(
            "区局拒绝了对账，本次未对账：稍后或夜间任务会再试，仍不行请联系区局"
            f" (the hub refused reconciliation: {answer.body[:300].decode(errors='replace')})"
        )
    if answer.too_large is not None:
        raise answer.too_large
    if talk is not None:
        talk.bytes += len(req) + len(answer.body)
    try:
        doc = open_document(
            answer.body,
            kind=SummaryAnswer.KIND,  # every reconciliation answer is of the one kind "reconcile"
            recipient=st.code,
            verify_key=st.hub_key,
            unseal_key=lambda k: st.keys.seal if k == st.keys.seal_key_id else None,
        )
    except RemoteProtocolError as exc:
        raise Refused(f"区局的对账应答核验未通过，未采用：请联系区局 (does not verify: {exc})") from exc
    try:
        return read(doc.body)
    except RemoteProtocolError as exc:
        raise Refused(f"区局的对账应答格式不对，未采用：请联系区局 (malformed: {exc})") from exc
