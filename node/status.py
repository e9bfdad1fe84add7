"""The station's status, gathered once: for ``sanji node status`` and for the staff UI's status bar
(``node/ui/status.py``), which adds what only a page needs (its own cached probe of the hub, the time).
"""

from __future__ import annotations

import asyncio
from typing import Any

from node import blobs, feed_quarantine, freshness, hubkeys, relay_address, relay_alert, relay_queue
from node.station import Station
from present.webui import TIER_NAMES
from replica.errors import Refused
from replica.ids import iso_from_ms
from sync.outbox import BatchState


def gather(st: Station, *, hub_reachable: bool | None) -> dict[str, object]:
    """The station's status: what ``sanji node status`` prints (CONTRACT.md names the keys) and what the
    UI's status bar starts from. ``hub_reachable`` is the caller's own probe (None: not asked)."""
    try:
        cat = st.catalogue()
        version, expires = cat.version, cat.expires_at
    except Refused:
        version, expires = 0, ""
    now_iso = iso_from_ms(st.clock())
    expired = bool(expires) and expires < now_iso
    by_line, by_stick = st.meta.int("last_sync"), st.meta.int("last_import")
    last = max(by_line, by_stick)
    return {
        "station": st.code,
        "tier": st.tier,
        "name": st.meta.text("name"),
        "pending": st.pending_changes(),
        "last_sync": iso_from_ms(last) if last else None,
        # How the last exchange with the hub went: "network", "usb" (hand-carried files), or None.
        "last_sync_via": None if not last else ("usb" if by_stick > by_line else "network"),
        "catalogue_version": version,
        "catalogue_expires_at": expires,
        "catalogue_expired": expired,
        "catalogue_warning": st.meta.text("catalogue_warning")
        or ("事项目录已过期，请尽快同步 (catalogue release has expired; sync when you can)" if expired else ""),
        "hub_reachable": hub_reachable,
        "hub_url": st.meta.text("hub_url"),  # '' for a station that exchanges with the hub by USB only
        "last_error": st.meta.text("last_error"),
        "epoch": st.meta.int("epoch", 1),
        "enrolled": bool(st.meta.get("enrolled", False)),
        "hub_fingerprint": hubkeys.pinned_fingerprint(st),  # the root this station trusts ('' until it follows)
        "hub_keys_version": st.meta.int("hub_keys_version"),
        # This station's own public keys (hex) and key ids: what the hub pins at enrolment, and what a
        # verifier of its batches needs (docs/protocol.md, "Keys and key ids").
        "sign_public_key": st.keys.sign_pub.hex(),
        "sign_key_id": st.keys.sign_key_id,
        "seal_public_key": st.keys.seal_pub.hex(),
        "seal_key_id": st.keys.seal_key_id,
        # A field device's inspector wants to know, before leaving the signal, what has not gone yet.
        "photos_pending": len(blobs.pending(st)) if st.tier == "field" else 0,
        # Feed pages set aside (node/feed_quarantine.py): every one, and every skip, stays visible here.
        **feed_quarantine.summary(st),
        **freshness.summary(st),  # hub_time, and whether the feed stopped advancing (node/freshness.py)
        # A village's township relay ('' for none), and when a round last went through it.
        "relay_url": st.meta.text("relay_url"),
        # The township relay the hub's feed named (used when relay_url is ''): node/relay_address.py.
        "relay_url_from_feed": st.meta.text("feed_relay_url"),
        # Its township withdrew the address the feed named, and it has no --relay of its own: no relay now.
        "relay_withdrawn": relay_address.withdrawn(st),
        "last_relay_round": iso_from_ms(st.meta.int("last_relay_round")) if st.meta.int("last_relay_round") else None,
        # The relay's last misbehaviour caught here, naming its township, and what to do (node/relay_alert.py).
        **relay_alert.summary(st),
        # A township's relay queue (node/relay_queue.py): per village, frames waiting up and down and
        # the oldest one's age; only outer headers and sizes, which is all the relay knows.
        "relay_queue": relay_queue.summary_of(st.folder, st.code, st.clock()),
        # A township's relay address as told to its villages, or why none is (node/relay_address.py).
        **relay_address.summary(st),
    }


def probe(st: Station) -> bool:
    """Whether the hub answers ``/healthz`` within three seconds (the CLI's probe; the UI keeps its own)."""
    url = st.meta.text("hub_url")
    if not url:
        return False

    async def check() -> bool:
        import aiohttp

        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s,
                s.get(url.rstrip("/") + "/healthz") as r,
            ):
                return r.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    return asyncio.run(check())


def text(d: dict[str, Any]) -> str:
    """``sanji node status`` without ``--json``."""
    return "\n".join(
        [
            f"站点 {d['station']} {d['name']}（{TIER_NAMES.get(d['tier'], d['tier'])}）",
            f"待上传变更 {d['pending']}   最近同步 {d['last_sync'] or '从未'}"
            f"{'（U盘）' if d['last_sync_via'] == 'usb' else ''}   "
            + ("仅用U盘与区局交换" if not d["hub_url"] else f"区局{'在线' if d['hub_reachable'] else '离线'}"),
            f"事项目录 v{d['catalogue_version']} 有效至 {d['catalogue_expires_at']}",
            f"区局根密钥指纹 {d['hub_fingerprint'] or '（尚未跟随，下次同步时固定）'}  "
            f"密钥清单 v{d['hub_keys_version']}",
            f"本站签名公钥 {d['sign_public_key']} ({d['sign_key_id']})",
            f"本站加密公钥 {d['seal_public_key']} ({d['seal_key_id']})",
        ]
        + ([f"待上传照片 {d['photos_pending']} 个（联网同步时续传）"] if d["photos_pending"] else [])
        + ([f"提醒: {d['catalogue_warning']}"] if d["catalogue_warning"] else [])
        + ([f"上次同步问题: {d['last_error']}"] if d["last_error"] else [])
        + ([f"提醒: {d['freshness_warning']}"] if d["freshness_warning"] else [])
        + _quarantine_text(d)
        + ([f"乡镇转发站 {d['relay_url']}（连不上区局时经它转发）"] if d.get("relay_url") else [])
        + (
            [f"乡镇转发站 {d['relay_url_from_feed']}（区局告知；连不上区局时经它转发）"]
            if d.get("relay_url_from_feed") and not d.get("relay_url")
            else []
        )
        + ([f"乡镇转发站: 无（{relay_address.WITHDRAWN}）"] if d.get("relay_withdrawn") else [])
        + ([f"警告: {d['relay_alert']['words']}"] if d.get("relay_alert") else [])
        + ([f"告知下辖村的转发地址 {d['relay_advertised']}"] if d.get("relay_advertised") else [])
        + ([f"提醒: {d['relay_address_warning']}"] if d.get("relay_address_warning") else [])
        + [
            f"转发队列 {q['village']}: 待上送 {q['up']} 个，待取回 {q['down']} 个，"
            f"{q['bytes']} 字节，最久 {q['oldest_age_s']} 秒"
            for q in d.get("relay_queue") or []
        ]
    )


def _quarantine_text(d: dict[str, Any]) -> list[str]:
    latest = d.get("feed_quarantine_latest")
    if not d.get("feed_quarantined") or not isinstance(latest, dict):
        return []
    return [
        f"已隔离区局数据页 {d['feed_quarantined']} 个（其中跳过 {d['feed_skipped']} 个，变更由夜间对账补回）；"
        f"最近 {latest['at']}: {latest['reason']}"
    ]


# What each outbox state means to staff (sync/outbox.py's table): `node receipts` prints these words.
BATCH_WORDS = {
    BatchState.PENDING: "待上传",
    BatchState.RECEIPTED: "已送达区行政审批局",
    BatchState.QUARANTINED: "区局暂存待核（已送达，变更编号已占用）",
    BatchState.REJECTED: "被区局拒收，下次同步重发",
    BatchState.SUPERSEDED: "已作废（变更已换新批次重发）",
}


def batches(st: Station) -> dict[str, object]:
    """Every batch this station has made, with the state the hub's answers put it in (``node receipts``)."""
    rows = st.conn.execute(
        "SELECT first_seq, last_seq, state, reason, receipted_ms FROM outbox ORDER BY epoch, first_seq"
    ).fetchall()
    out = [
        {"first_seq": a, "last_seq": b, "state": s, "reason": r, "receipted_at": iso_from_ms(t) if t else None}
        for a, b, s, r, t in rows
    ]
    return {"batches": out}


def batches_text(d: dict[str, Any]) -> str:
    lines = []
    for b in d["batches"]:
        words = BATCH_WORDS.get(b["state"], b["state"])  # a StrEnum key matches its plain string
        when = f" {b['receipted_at']}" if b["state"] == BatchState.RECEIPTED and b["receipted_at"] else ""
        reason = f"：{b['reason']}" if b["reason"] and b["state"] != BatchState.RECEIPTED else ""
        lines.append(f"变更 {b['first_seq']}-{b['last_seq']}: {words}{when}{reason}")
    return "\n".join(lines) or "（尚无批次）"
