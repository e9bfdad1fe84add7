"""A village's round through its township's relay (``node init … --relay URL``), when its hub cannot be
reached: the same batches and the same signed pull request as to the hub, left at the relay, and the
hub's answers collected from it.

Nothing the relay hands over is taken on its word: every acks document and feed page is opened with
the hub key pinned at enrolment (node/uplink.py, node/feed_quarantine.py), exactly as from the hub. A
page must answer the nonce of one of this station's own pull requests, each at most once, so a relay
replaying an old page is refused as a replay; a page with no nonce is the hub's answer to a stick
status the township carried, taken as an imported stick page is (``classify``). The relay can drop or
delay; the outbox keeps every batch until the hub's own receipt for it arrives, and the next round
offers it again. What it holds past a bound is named as withheld (node/relay_withheld.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from node import feed_quarantine, hub_answer, hubkeys, relay_alert, relay_skipped, relay_withheld, uplink
from node.conversation import REPLAYED, Answer, Request, drive_async, refresh_keys
from node.station import Station
from protocol.codec import Limits, pack, unpack
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header, verify_frame
from protocol.limits import PUSH_MAX_FRAMES, RESPONSE_MAX_BYTES
from replica.errors import Refused
from sync.outbox import BatchState

RELAY_TYPE = "application/vnd.sanji.relay+msgpack"
FRAMES_TYPE = "application/vnd.sanji.frames+msgpack"
NONCES_KEPT = 8  # this station's pull requests a page may still answer (older ones were replaced)
# A relay answer: a few documents, each within the frame cap, and a refusal's reason in Chinese.
_ANSWER_LIMITS = Limits(
    max_bytes=4 * RESPONSE_MAX_BYTES, max_str=1024, max_bin=RESPONSE_MAX_BYTES, max_array=4096, max_map=8, max_depth=2
)


@dataclass
class RelayRound:
    pushed: int = 0  # changes the hub's receipts, collected here, now settle
    pulled: int = 0
    staff: int = 0  # staff account entries the pages applied
    queued: int = 0  # batches left at the relay this round
    problems: list[str] = field(default_factory=list)
    # What the relay itself did wrong (node/relay_alert.py WHAT codes, with the detail): not the hub's
    # answers that could not be applied, only what is not the hub's answer to us at all.
    misdeeds: list[tuple[str, str]] = field(default_factory=list)
    # The hub's key history as the relay handed it this round: what it held for us may be signed by a
    # key the hub has since replaced (hubkeys.signed_before_a_rotation), which is not the relay's doing.
    history: bytes | None = None


def _settled(st: Station) -> int:
    row = st.conn.execute(
        "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM outbox WHERE state=?", (BatchState.RECEIPTED.value,)
    ).fetchone()
    return int(row[0])


async def _answer(resp: aiohttp.ClientResponse) -> dict[str, object]:
    if resp.status != 200:
        body = await hub_answer.read_json(resp)
        reason = body.get("message") if isinstance(body, dict) else None
        raise Refused(f"乡镇转发站未收下：{reason or f'HTTP {resp.status}'}", code="relay_refused")
    data = await hub_answer.read_body(resp, what="乡镇转发站的应答", cap=4 * RESPONSE_MAX_BYTES, hub_document=False)
    try:
        doc = unpack(data, _ANSWER_LIMITS)
    except RemoteProtocolError as exc:
        raise Refused(f"乡镇转发站的应答无法读取，未采用 ({exc})", code="relay_malformed") from exc
    if not isinstance(doc, dict):
        raise Refused("乡镇转发站的应答无法读取，未采用 (not a map)", code="relay_malformed")
    return doc


def _documents(doc: dict[str, object], key: str, *, required: bool = True) -> list[bytes]:
    items = doc.get(key, None if required else [])  # a relay from before acks came with pages sends none
    if not isinstance(items, list) or not all(isinstance(i, bytes) for i in items):
        raise Refused("乡镇转发站的应答无法读取，未采用 (no list of documents)", code="relay_malformed")
    return [bytes(i) for i in items]


def _taken(doc: dict[str, object], offered: int) -> tuple[int, str | None]:
    """How many of the offered frames the relay took (the leading ones), and why not the rest. A relay
    from before partial pushes took all or answered an error; one that claims what it did not take is
    caught by the withheld clock (node/relay_withheld.py), as any relay that drops."""
    queued = doc.get("queued", offered)
    if type(queued) is not int or not 0 <= queued <= offered:
        raise Refused(f"乡镇转发站的应答无法读取，未采用 (queued {queued!r} of {offered})", code="relay_malformed")
    refused = doc.get("refused")
    reason = refused.get("message") if isinstance(refused, dict) else None
    if queued == offered:
        return queued, None
    return queued, str(reason) if isinstance(reason, str) and reason else "乡镇转发队列已满 (relay_full)"


def _take_acks(st: Station, acks: list[bytes], rnd: RelayRound) -> None:
    for doc in acks:
        try:
            uplink.read_acks(st, doc)  # the hub's signature, with the pinned key, or refused
        except Refused as exc:
            rnd.problems.append(f"乡镇转发站交来的回执未通过核验，未采用：{exc}")
            if not hubkeys.signed_before_a_rotation(st, doc, rnd.history):  # else offered again, answered anew
                rnd.misdeeds.append(("bad_acks", str(exc)))


async def _push(st: Station, session: aiohttp.ClientSession, url: str, rnd: RelayRound) -> None:
    uplink.build_outbox(st)
    unsettled = uplink.unsettled(st)
    batches = [frame for _, frame in unsettled]
    relay_skipped.keep_only(st, [out.batch_hash for out, _ in unsettled])
    for start in range(0, len(batches), PUSH_MAX_FRAMES):
        part = batches[start : start + PUSH_MAX_FRAMES]
        async with session.post(f"{url}/v1/sync/push", data=pack(part), headers={"Content-Type": FRAMES_TYPE}) as resp:
            doc = await _answer(resp)
        acks = _documents(doc, "acks")
        n, full = _taken(doc, len(part))
        rnd.queued += n
        # Only what the relay took is left with it: the rest stays unsettled in the outbox, offered again
        # next round, and no clock starts for it.
        taken = [out.batch_hash for out, _ in unsettled[start : start + n]]
        relay_withheld.left(st, taken)
        relay_skipped.left(st, taken)  # in order: every request left from now on comes after these
        _take_acks(st, acks, rnd)
        if full is not None:  # a full relay is no misdeed: the round goes on to collect what waits
            rnd.problems.append(f"乡镇转发站未全部收下（{len(batches) - start - n} 批留在本村，下次再送）：{full}")
            return


def _remember(st: Station, nonce: bytes) -> None:
    kept = st.meta.get("relay_nonces", [])
    kept = [n for n in kept if isinstance(n, str)] if isinstance(kept, list) else []
    with st.transaction():
        st.meta.set("relay_nonces", [*kept, nonce.hex()][-NONCES_KEPT:])
    relay_skipped.asking(st, nonce, [*kept, nonce.hex()][-NONCES_KEPT:])


OURS, CARRIED, REPLAY = "ours", "carried", "replay"


def classify(st: Station, page: bytes) -> str:
    """What a page the relay handed over answers (and, for OURS, forget its nonce):

    - OURS: one of our pull requests not yet answered, by its nonce;
    - CARRIED: no nonce at all. The hub signs such a page only for a stick status of ours that the
      township carried as cargo (node/relay_cargo.py, hub/web/sync.py ``_pull_identity``), the page
      ``node export T --for`` would have written on our stick: it is taken as an imported one is
      (node/usb_files.py), the cursor making an old one harmless. Whether it is the hub's, sealed to
      us, ``take_page`` checks as for any page;
    - REPLAY: a nonce we did not ask for, or one already answered.
    """
    try:
        header = peek_header(page)
    except RemoteProtocolError:
        return OURS  # too damaged to read: take_page refuses it with the decoder's reason
    if "nonce" not in header:
        return CARRIED
    nonce, kept = header["nonce"], st.meta.get("relay_nonces", [])
    if not isinstance(nonce, bytes) or not nonce or not isinstance(kept, list) or nonce.hex() not in kept:
        return REPLAY
    with st.transaction():
        st.meta.set("relay_nonces", [n for n in kept if n != nonce.hex()])
    return OURS


async def _pull(st: Station, session: aiohttp.ClientSession, url: str, rnd: RelayRound) -> bool:
    """Leave a fresh pull request and collect the pages waiting. True when a page was applied."""
    nonce = os.urandom(16)
    _remember(st, nonce)
    relay_withheld.asked(st)
    header = uplink.pull_request(st, st.meta.int("feed_cursor"), nonce)
    async with session.get(f"{url}/v1/sync/pull", headers={uplink.REQUEST_HEADER: header}) as resp:
        doc = await _answer(resp)
    pages = _documents(doc, "pages")
    _take_acks(st, _documents(doc, "acks", required=False), rnd)  # what a push would have collected
    applied = False
    for page in pages:
        answers = classify(st, page)
        if answers == REPLAY:
            feed_quarantine.record(st, page, source="relay", reason=REPLAYED)
            rnd.problems.append(REPLAYED)
            rnd.misdeeds.append(("replayed_page", REPLAYED))
            continue
        outcome = feed_quarantine.take_page(st, page, source="relay" if answers == OURS else "relay:stick")
        if outcome.problem:
            rnd.problems.append(outcome.problem)
            if not _the_hubs(st, page, rnd):  # a genuine page that cannot be applied is the hub's matter
                rnd.misdeeds.append(("bad_page", outcome.problem))
        if outcome.result is not None:
            rnd.pulled += outcome.result.pulled
            rnd.staff += outcome.result.staff
            applied = True
        if answers == CARRIED:
            continue  # it answers no request of ours: the withheld and order checks are about those
        if outcome.result is not None or _the_hubs(st, page, rnd):  # the hub's answer came through
            relay_withheld.answered_page(st)
            if (proof := relay_skipped.check(st, page)) is not None:  # and says what it never had
                rnd.problems.append(f"乡镇转发站{relay_alert.WHAT['skipped']}：{proof[1]}")
                rnd.misdeeds.append(proof)
    return applied


def _the_hubs(st: Station, page: bytes, rnd: RelayRound) -> bool:
    """Whether the page is one the hub signed for this station (against the pinned key, or one of the
    hub's keys before a rotation this station has followed since)."""
    try:
        verify_frame(page, recipient=st.code, verify_key=st.hub_key)
    except RemoteProtocolError:
        return hubkeys.signed_before_a_rotation(st, page, rnd.history)
    return True


async def _keys(st: Station, session: aiohttp.ClientSession, url: str, rnd: RelayRound) -> bool:
    """Follow the hub's key rotations with the history the relay keeps (node/relay_forward.py), checked
    from the root this station pinned exactly as from the hub (conversation.refresh_keys): after a
    rotation, nothing the hub sends verifies until the station has followed it."""

    async def send(request: Request) -> Answer:
        async with session.get(f"{url}{request.path}", params=dict(request.params)) as resp:
            if resp.status != 200:
                return Answer(resp.status, message=f"HTTP {resp.status}")
            cap = request.cap or RESPONSE_MAX_BYTES
            rnd.history = await hub_answer.read_body(resp, what=request.what, cap=cap, hub_document=False)
            return Answer(200, rnd.history)

    try:
        await drive_async(refresh_keys(st), send)
    except (Refused, hub_answer.AnswerTooLarge) as exc:
        rnd.problems.append(f"乡镇转发站转来的区局密钥记录未采用：{exc}")
        if isinstance(exc, Refused) and exc.code == hubkeys.KEY_CHAIN_REFUSED:
            # The history is checked from the root pinned at enrolment: one that fails was altered on
            # the way. The round stops here: acks and pages signed by a key it could not follow would
            # fail too, and would be blamed on the relay as forged when the key history is what was.
            rnd.misdeeds.append(("bad_keys", str(exc)))
            return False
        # Anything else (a catalogue release in the history this station cannot take) is not the
        # relay's doing: the round goes on with the keys the station holds (the simulator's seed 232).
    return True


async def relay_round(st: Station, url: str, timeout: aiohttp.ClientTimeout) -> RelayRound:
    """Push and pull through the relay at ``url``. Raises the connection error when it is down too.

    What the relay did wrong is remembered as its alert (node/relay_alert.py), naming it; a round it
    carried cleanly clears an alert whose pause is over. A relay that cannot be reached is not blamed
    for anything, and the time it is silent does not count towards withholding."""
    rnd = RelayRound()
    before = _settled(st)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # First: the acks and pages may be signed by a key only the newer history names.
            keys_followed = await _keys(st, session, url, rnd)
            relay_withheld.reachable(st)  # it answered: its clocks run again
            if keys_followed:
                await _push(st, session, url, rnd)
                if await _pull(st, session, url, rnd):
                    # The request just left asked from the old cursor: replace it with one from where we are now.
                    await _pull(st, session, url, rnd)
    except Refused as exc:
        if exc.code == "relay_malformed":
            relay_alert.record(st, "malformed", url, str(exc))
        raise
    except (TimeoutError, aiohttp.ClientError, OSError):
        relay_withheld.unreachable(st)
        raise
    rnd.pushed = _settled(st) - before
    with st.transaction():
        st.meta.set("last_relay_round", st.clock())
    if not rnd.misdeeds:  # a misdeed it is caught at is named first; holding back is the quiet one
        late = relay_withheld.overdue(st)
        if late is not None:
            rnd.problems.append(f"乡镇转发站{relay_alert.WHAT['withheld']}：{late[1]}")
            rnd.misdeeds.append(late)
    if rnd.misdeeds:
        problem, detail = rnd.misdeeds[0]
        relay_alert.record(st, problem, url, detail)
    else:
        relay_alert.clear(st)
    return rnd


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise Refused(
            f"乡镇转发站地址有误：{url!r}；应形如 http://10.1.5.1:8720 (give the relay as an http(s) URL)",
            code="bad_relay",
        )


def set_relay(folder: Path, url: str) -> str:
    """Remember the township's relay listener (``node init … --relay URL``); ``node set-hub`` leaves it."""
    check_url(url)
    st = Station(folder)
    try:
        with st.transaction():
            st.meta.set("relay_url", url.rstrip("/"))
    finally:
        st.close()
    return url.rstrip("/")
