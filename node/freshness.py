"""Whether the hub's feed still advances: the newest genuine hub time, and the warning staff see.

A man in the middle can freeze a station without forging anything: keep serving the last genuine
feed page and the station never learns of a new release or decision, while every sync "works" (issue
21). So every pull carries a nonce the hub answers in the page's signed header (node/client.py), every
genuine page carries the hub's time (``hub_time``, the newest one kept), and a round that reached the
hub without one answered page counts in ``stale_rounds``. A station that has a hub address and such a
round since its last answered page warns "区局数据可能已停更" in `node status` and on the staff screen.
"""

from __future__ import annotations

from node.station import Station
from replica.ids import iso_from_ms

STALE_TEXT = "区局数据可能已停更"
# A release runs 180 days; one this close to its end means the hub has published nothing for months.
NEAR_EXPIRY_DAYS = 14


def summary(st: Station) -> dict[str, object]:
    """For `node status`: ``hub_time`` (ISO, or None before any page), ``hub_stale``, whether the
    catalogue release or the hub's key list nears its end (``catalogue_expires_soon``,
    ``hub_keys_expire_soon``), and the warning for each."""
    hub_ms, rounds = st.meta.int("hub_time"), st.meta.int("stale_rounds")
    stale = bool(st.meta.text("hub_url")) and rounds > 0
    warnings = []
    if stale:
        since = f"最新区局时间 {iso_from_ms(hub_ms)}" if hub_ms else "尚未收到区局的数据页"
        warnings.append(
            f"{STALE_TEXT}：最近 {rounds} 次同步连上了区局，但没有收到回应本次请求的数据页（{since}）"
            "(the hub answered but its feed did not advance)；请联系区局核查网络线路或代理"
        )
    row = st.conn.execute("SELECT expires_at FROM catalogues ORDER BY version DESC LIMIT 1").fetchone()
    now = st.clock()
    expires = str(row[0]) if row is not None and row[0] else ""
    # Same format and offset as iso_from_ms, so the strings compare as times (as node status does).
    soon = bool(expires) and iso_from_ms(now) <= expires < iso_from_ms(now + NEAR_EXPIRY_DAYS * 86_400_000)
    if soon:
        warnings.append(
            f"{STALE_TEXT}：事项目录将于 {expires[:10]} 到期 (the catalogue release nears its expiry)；"
            "请尽快联网同步，或联系区局发布新版本"
        )
    # The hub's key list (node/hubkeys.py) has its own expiry: past it the station takes nothing more
    # from the hub, so it warns while there is still time for the hub to renew it.
    keys_expire = st.meta.int("hub_keys_expires")
    keys_soon = bool(keys_expire) and now <= keys_expire < now + NEAR_EXPIRY_DAYS * 86_400_000
    if keys_soon:
        warnings.append(
            f"{STALE_TEXT}：区局密钥清单将于 {iso_from_ms(keys_expire)[:10]} 到期 (the hub's key list "
            "nears its expiry)；请尽快联网同步以取得新的密钥清单，或联系区局"
        )
    return {
        "hub_time": iso_from_ms(hub_ms) if hub_ms else None,
        "hub_stale": stale,
        "catalogue_expires_soon": soon,
        "hub_keys_expire_soon": keys_soon,
        "freshness_warning": "；".join(warnings),
    }


def report(st: Station) -> str:
    """What the station tells the hub in its next pull (the dashboard shows it as the station's last
    problem): a frozen feed is seen at the district too, once the station reaches the real hub."""
    parts = [summary(st)["freshness_warning"], st.meta.text("last_error")]
    return "；".join(str(p) for p in parts if p)[:REPORT_CHARS]


REPORT_CHARS = 200  # the signed pull travels in a request header, capped at REQUEST_HEADER_MAX_CHARS
