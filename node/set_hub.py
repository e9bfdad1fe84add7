"""`sanji node set-hub DIR URL`: point a station at a hub that moved, or give a USB-only station its
first line (issue 14 item 10).

The new address is taken only if what answers there proves to be this station's own hub: its key
history (``GET /v1/keys``) must verify from the root the station pinned at enrolment, for the same
district, down to a current key list. A look-alike server, or another district's hub, is refused and
the old address stays. Everything the new address sends afterwards is verified as it always is.
"""

from __future__ import annotations

import asyncio

import aiohttp

from node import hub_answer, hubkeys
from node.station import Station
from protocol.codec import unpack
from protocol.errors import RemoteProtocolError
from protocol.hubkeys import follow
from replica.errors import Refused, Unreachable

TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)


def _normal(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) > 300 or any(c.isspace() for c in url):
        raise Refused(f"区局地址 {url!r} 不对：应形如 http://10.1.2.3:8700", code="bad_url")
    return url


async def _history(url: str) -> object:
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.get(f"{url}/v1/keys", params={"after": "0"}) as resp,
        ):
            if resp.status != 200:
                raise Refused(
                    f"{url} 没有给出区局的密钥记录（HTTP {resp.status}）：这可能不是 Sanji 区局，地址未修改",
                    code="not_a_hub",
                )
            data = await hub_answer.read_body(resp, what="区局的密钥记录")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise Unreachable(f"连不上 {url}：请检查地址和网络后重试；地址未修改 ({exc.__class__.__name__})") from exc
    try:
        return unpack(data)
    except RemoteProtocolError as exc:
        raise Refused(f"{url} 的应答不是 Sanji 区局的格式：地址未修改", code="not_a_hub") from exc


def set_hub(st: Station, url: str) -> dict[str, object]:
    url = _normal(url)
    anchor = st.meta.bytes("hub_root_pub") or st.meta.bytes("hub_sign_pub")
    if not anchor:
        raise Refused("本站还没有固定区局的密钥（尚未完成接入）：请先完成 sanji node init", code="not_enrolled")
    bundle = asyncio.run(_history(url))
    docs = bundle.get("docs") if isinstance(bundle, dict) else None
    if not isinstance(docs, list):
        raise Refused(f"{url} 的应答不是 Sanji 区局的密钥记录：地址未修改", code="not_a_hub")
    try:
        _root, keys = follow([d for d in docs if isinstance(d, bytes)], hub_id=st.hub_id, anchor=anchor)
    except RemoteProtocolError as exc:
        raise Refused(f"{url} 的密钥记录无法从本站固定的根密钥核验：地址未修改（{exc}）", code="wrong_hub") from exc
    if keys is None:
        raise Refused(
            f"{url} 上的区局不是本站登记的区局（{st.hub_id}，根密钥指纹 {hubkeys.pinned_fingerprint(st)}）："
            "地址未修改。请向区局核对新地址",
            code="wrong_hub",
        )
    hubkeys.adopt(st, bundle)  # follow any rotation the station had not seen yet
    with st.transaction():
        st.meta.set("hub_url", url)
    return {"station": st.code, "hub": url, "hub_fingerprint": hubkeys.pinned_fingerprint(st)}
