"""Whether a forwarded request's ``X-Sanji-Relay`` label is the township's own word (issue 17).

The hub names a township in its ``relay_seen`` alerts (hub/relay_alerts.py) and in the path a batch
took only when the label comes with a proof the township signed with its station key over this very
body (protocol/relay_label.py). A label without one, or with one that does not verify (forged, moved
from another body, too old, a revoked township), names nobody: the request is taken as a direct one,
and the label is noted in the refusal log with the code ``unproven_relay``, counted per address and
hour like every refusal (so bounded), and in ``/metrics`` (``sanji_batches_rejected_total{reason=
"unproven_relay"}``). The words say "claimed", never that the township misbehaved.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from protocol import relay_label
from protocol.errors import RemoteProtocolError

if TYPE_CHECKING:
    from hub.service import Hub

NAME = re.compile(r"[0-9A-Za-z-]{1,40}")  # what a station code can look like
# Above this a body is hashed in a worker thread (hashlib lets go of the GIL): a 32 MiB push takes
# about 0.1 s to hash, which the event loop's other requests should not wait for.
OFF_LOOP_BYTES = 256 * 1024
UNPROVEN = "unproven_relay"


class RefusalStore(Protocol):
    def reject(self, source: str, origin: str, reason: str, now_ms: int) -> None: ...


@dataclass(frozen=True)
class Label:
    relay: str = ""  # the township proven to have forwarded the request; '' for none
    claimed: str = ""  # a label that came without a valid proof ('' when proven or absent)
    why: str = ""  # why the proof was not taken: its code and reason


async def read(request: web.Request, hub: Hub, route: str, forwarded: bytes) -> Label:
    """The relay label of ``request`` on ``route``, proven against ``forwarded`` (the push's body, or the
    pull's signed request decoded) and the township's station key as the hub holds it."""
    claimed = request.headers.get(relay_label.RELAY_HEADER, "")
    if not claimed:
        return Label()
    shown = claimed if NAME.fullmatch(claimed) else "（格式不符）"
    proof = request.headers.get(relay_label.PROOF_HEADER, "")
    if not proof:
        return Label(claimed=shown, why=f"unauthenticated: 无 {relay_label.PROOF_HEADER} 签名")
    if shown != claimed:
        return Label(claimed=shown, why="malformed: 标签不是站点编码")
    if len(forwarded) > OFF_LOOP_BYTES:
        digest = (await asyncio.to_thread(hashlib.sha256, forwarded)).digest()
    else:
        digest = hashlib.sha256(forwarded).digest()
    try:
        relay_label.verify(
            claimed,
            proof,
            hub_id=hub.hub_id,
            route=route,
            body_sha256=digest,
            now_ms=hub.clock(),
            verify_key=hub.verify_key,
        )
    except RemoteProtocolError as exc:
        return Label(claimed=shown, why=f"{exc.code}: {str(exc)[:200]}")
    return Label(relay=claimed)


def note_unproven(store: RefusalStore, remote: str, label: Label, now_ms: int) -> None:
    """Note a label that proved nothing, without naming its township as having done anything."""
    store.reject(
        f"http:{remote}",
        "",
        f"{UNPROVEN}: 请求头 {relay_label.RELAY_HEADER} 声称经乡镇中转站 {label.claimed} 转发，"
        f"但没有该乡镇有效的转发签名（{label.why}）：此标签不予采信，不据此认定该乡镇有任何异常，所转内容照常逐一核验处理"
        " (a relay label without a valid proof names nobody)",
        now_ms,
    )
