"""A village's record of its township relay misbehaving, and what follows from it.

The relay cannot forge or alter what it carries, but it can hand over things that are not the hub's
answers to us: acks or pages that do not verify against the pinned hub key (swapped between villages,
truncated, written by the relay itself), pages answering no pull request of ours (a replay), answers it
cannot even frame. Each is refused where it is met (node/relay_client.py). The one misdeed no
signature shows, a relay that takes everything and forwards nothing, is caught by time instead
(node/relay_withheld.py: ``withheld``), unless the hub's signed page answering a later request shows
the hub never had a batch left before it (node/relay_skipped.py: ``skipped``, at once). Here it is
remembered, with the township named, so that:

- staff see it (``node status`` ``relay_alert``, the station window) with what to do: use the direct
  link or a USB stick;
- the village's rounds stop going through that relay for ``PAUSE_MS`` (the direct link is still tried
  first; with the hub out of reach the round fails as unreachable, and the stick remains) and, once
  the pause is over, try it again: a relay that behaves clears the alert, one that does not renews it.
  Staff who find it a false alarm lift the pause at once (``node relay-reset``, ``lift``);
- the hub hears of it: the station's signed pull requests carry the alert (``relay``,
  ``relay_problem``, ``relay_at_ms`` in protocol/feed.py ``PullRequest``), and its stick status too,
  until a page the hub signed echoes the report (``echoed``): the hub echoes only what it has recorded,
  so a hub that answered and then lost its bookkeeping hears it again (hub/relay_reports.py). The hub
  raises it as an alert naming the relay, once.
"""

from __future__ import annotations

from typing import Any

from node.relay_withheld import HOURS
from node.station import Station
from replica.ids import iso_from_ms
from sync.relay_evidence import heard, report_digest

PAUSE_MS = 24 * 3600 * 1000  # a relay caught misbehaving is left alone this long
# What the relay did, in staff's words; the keys are the stable codes the hub is told.
WHAT = {
    "bad_acks": "交来的回执不是区局签发给本站的（被调换、截断或伪造）",
    "bad_page": "交来的数据页未通过区局签名核验（被调换、截断或伪造）",
    "replayed_page": "重放了本站已取回过的数据页",
    "malformed": "交来的应答无法读取",
    "bad_keys": "交来的区局密钥记录未通过本站固定的根密钥核验（被篡改）",
    "withheld": f"交给它的批次或取数请求超过 {HOURS} 小时仍未送到区局（可能被扣下或延误）",
    # Certain (sync/relay_evidence.py): the hub's signed answer to a later request shows it never had one.
    # Whether the relay kept the batch back or sent it after the request, it did not forward in order.
    "skipped": (
        "转发了本站之后的取数请求，却没有先把本站之前交给它的批次送到区局（扣下或未按次序转发，区局签名的应答为证）"
    ),
}
# What became of what it handed over or held: refused, or still kept here to send another way.
_KEPT = {"withheld": "这些变更仍保存在本站，数据无损失", "skipped": "这些变更仍保存在本站，数据无损失"}


def township_of(code: str) -> str:
    """The township a village's relay belongs to: the code one level up (``360802-T01-05`` → ``360802-T01``)."""
    return code.rsplit("-", 1)[0] if code.count("-") >= 2 else ""


def record(st: Station, problem: str, url: str, detail: str) -> dict[str, Any]:
    """Remember that the relay at ``url`` misbehaved (``problem``: a key of WHAT). Outside a transaction."""
    alert = {
        "relay": st.meta.text("parent") or township_of(st.code),
        "url": url,
        "problem": problem if problem in WHAT else "malformed",
        "detail": detail[:300],
        "at_ms": st.clock(),
        "reported_ms": 0,
    }
    with st.transaction():
        st.meta.set("relay_alert", alert)
    return alert


def current(st: Station) -> dict[str, Any] | None:
    alert = st.meta.get("relay_alert")
    return alert if isinstance(alert, dict) and isinstance(alert.get("at_ms"), int) else None


def paused(st: Station) -> dict[str, Any] | None:
    """The alert while it keeps the village off its relay (unless staff lifted it), else None."""
    alert = current(st)
    if alert is None or alert.get("lifted_ms"):
        return None
    return alert if st.clock() - int(alert["at_ms"]) < PAUSE_MS else None


def lift(st: Station) -> dict[str, Any] | None:
    """Staff judged the alert a false alarm (``node relay-reset``): the relay carries again from the next
    round. The alert lifted, or None when there was none.

    One the hub has not heard of yet is still reported, marked lifted, not dropped: it is the only
    account the hub gets of what this village saw, and the hub's operator, who sees every village's
    reports of that township, is the one to judge a pattern (staff on site can be talked into a reset).
    A relay that misbehaves again is caught and paused again by the next round."""
    alert = current(st)
    if alert is None:
        return None
    with st.transaction():
        kept = {**alert, "lifted_ms": st.clock()} if to_report(st) is not None else None
        st.meta.set("relay_alert", kept)
    return {**alert, "lifted_ms": st.clock()}


def clear(st: Station) -> None:
    """The relay behaved through a whole round: it is trusted to carry again. An alert the hub has not
    echoed yet stays (no longer pausing anything) until it has: clearing it would lose the report."""
    if current(st) is not None and to_report(st) is None:
        with st.transaction():
            st.meta.set("relay_alert", None)


def to_report(st: Station) -> dict[str, Any] | None:
    """The alert the hub has not heard of yet (what the next pull request carries)."""
    alert = current(st)
    return alert if alert is not None and not alert.get("reported_ms") else None


def digest(alert: dict[str, Any]) -> bytes:
    """The report's digest, as the hub echoes it (the fields the pull request carries)."""
    return report_digest(str(alert["relay"]), str(alert["problem"]), int(alert["at_ms"]))


def echoed(st: Station, echo: bytes | None) -> None:
    """A page the hub signed said which report of ours it has recorded (``FeedPage.relay_report``; inside
    the page's transaction). Only that settles the report: a hub that answered and then lost its
    bookkeeping never echoes it, so the report goes again (hub/relay_reports.py)."""
    if echo is None:
        return  # a hub from before the echo
    if not st.meta.get("report_echo"):
        st.meta.set("report_echo", True)  # this hub echoes: answers alone no longer settle a report
    alert = to_report(st)
    if alert is not None and heard(digest(alert), echo):
        st.meta.set("relay_alert", {**alert, "reported_ms": st.clock()})


def reported(st: Station, at_ms: int) -> None:
    """A round with a hub from before the echo carried the alert: later requests need not carry it
    again. A hub that echoes settles it by its echo alone (``echoed``)."""
    alert = to_report(st)
    if alert is not None and int(alert["at_ms"]) <= at_ms and not st.meta.get("report_echo"):
        with st.transaction():
            st.meta.set("relay_alert", {**alert, "reported_ms": st.clock()})


def words(alert: dict[str, Any]) -> str:
    """The sentence staff read: who, what, and what to do."""
    until = iso_from_ms(int(alert["at_ms"]) + PAUSE_MS)
    who = f"乡镇中转站 {alert['relay'] or '（本乡镇）'}（{alert['url']}）"
    what = WHAT.get(str(alert["problem"]), WHAT["malformed"])
    if alert["problem"] == "skipped" and alert.get("detail"):
        what += f"（{alert['detail']}）"  # which batch: the hub's word, not a guess
    pause = (
        "工作人员已确认误报，解除暂停，恢复经它转发"
        if alert.get("lifted_ms")
        else f"{until} 前不再经它转发，请直接连区局同步或用 U 盘导出交换；确认是误报可用 sanji node relay-reset 解除"
    )
    return f"{who}异常：{what}，{_KEPT.get(str(alert['problem']), '已拒收，本站数据无损失')}；{pause}" + (
        "（已报告区局）" if alert.get("reported_ms") else "（下次连上区局时自动报告）"
    )


def summary(st: Station) -> dict[str, object]:
    """``node status``'s ``relay_alert``: None, or the alert with its sentence."""
    alert = current(st)
    if alert is None:
        return {"relay_alert": None}
    return {
        "relay_alert": {
            "relay": alert["relay"],
            "url": alert["url"],
            "problem": alert["problem"],
            "detail": alert.get("detail", ""),
            "at": iso_from_ms(int(alert["at_ms"])),
            "paused": paused(st) is not None,
            "lifted": bool(alert.get("lifted_ms")),
            "reported": bool(alert.get("reported_ms")),
            "words": words(alert),
        }
    }
