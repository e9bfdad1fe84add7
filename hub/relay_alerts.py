"""Alerts naming a township relay that misbehaved (issue 17): what the hub sees itself, and what a village
caught and reported in its signed pull request.

A relay can drop, delay, replay or mix what it carries, never forge it: every batch and request it
forwards verifies as its village's own or is refused. So the hub raises an alert, naming the township,
where the relay is the one to blame:

- ``relay_seen`` (the hub's own sight, counted per township and hour like refusals): only against a
  township whose signed proof came with the request (hub/relay_proof.py; an unproven ``X-Sanji-Relay``
  label makes the source ``http:``, which names nobody here): a forwarded frame that fails verification, an
  authentic batch of a station that is not one of that township's villages, a gap in a village's chain
  opened by a forwarded batch (the relay forwards in chain order, so earlier batches were withheld or
  are coming after it, unless they are on their way by hand: the words say "may");
- ``relay`` (a village's signed report, protocol/feed.py ``PullRequest.relay*``): the village met acks
  or pages that were not the hub's, or a replayed page, from its relay, or what it left there went
  unanswered too long while the relay kept answering (``withheld``), or the hub's page showed a batch
  kept back or forwarded out of order (``skipped``). One alert per report: the village repeats it
  until the hub's signed page echoes it (hub/relay_reports.py).

Duplicates arriving through a relay are not alerts: a village offers every unsettled batch again each
round, so a batch forwarded twice is the normal case, answered as a duplicate.
"""

from __future__ import annotations

from typing import Protocol

from hub.store.stations import Station
from replica.ids import iso_from_ms
from sync.session import AckResult


class RelayStore(Protocol):
    """What of the hub store this needs (either backend)."""

    def station(self, code: str) -> Station | None: ...
    def alert(self, kind: str, station: str, detail: str, now_ms: int) -> None: ...
    def alert_once(self, kind: str, station: str, detail: str, now_ms: int) -> bool: ...


REPORTED = "relay"
SEEN = "relay_seen"
# A village's report codes (node/relay_alert.py WHAT), in the operator's words.
PROBLEMS = {
    "bad_acks": "交给村的回执不是区局签发给该村的（被调换、截断或伪造）",
    "bad_page": "交给村的数据页未通过区局签名核验（被调换、截断或伪造）",
    "replayed_page": "向村重放已取回过的数据页",
    "malformed": "交给村的应答无法读取",
    "bad_keys": "交给村的区局密钥记录未通过根密钥核验（被篡改）",
    # Caught by time, not signature (node/relay_withheld.py): the village's batches or pull requests
    # left there went unanswered for its bound while the relay kept answering.
    "withheld": "村交给它的批次或取数请求长时间未送到区局（可能被扣下或延误）",
    # Certain, not timed (sync/relay_evidence.py): the hub's signed page answering a later pull request
    # says the hub never had a batch the village had left there before it: kept back, or sent after it.
    "skipped": (
        "转发了村之后的取数请求，却没有先把村之前交给它的批次送到区局（扣下或未按次序转发，区局签名的应答为证）"
    ),
}


def relay_of(source: str) -> str:
    """The township named in a batch's path (``relay:CODE@address``), or ''."""
    if not source.startswith("relay:"):
        return ""
    return source[len("relay:") :].split("@", 1)[0]


def path_of(source: str) -> str:
    """How a station last reached us, for the station tree: 'usb', 'relay:CODE' (through that township's
    relay: the dashboard marks the village reachable only through it) or 'network'."""
    if source.startswith("file:"):
        return "usb"
    relay = relay_of(source)
    return f"relay:{relay}" if relay else "network"


def reported(store: RelayStore, village: str, relay: str, problem: str, at_ms: int, now_ms: int) -> bool:
    """A village's signed report that its township relay misbehaved. Taken only from a village about its
    own township (the station tree says which); True when the alert was raised now."""
    if not relay:
        return False
    station = store.station(village)
    if station is None or station.parent != relay:
        return False
    what = PROBLEMS.get(problem, f"其他异常（{problem[:32]}）")
    kept = "变更仍保存在该村" if problem in ("withheld", "skipped") else "已拒收"  # what was held was never lost either
    detail = (
        f"乡镇中转站 {relay} 异常：{what}。涉及村（社区）：{village}（该村于 {iso_from_ms(at_ms)} 发现并报告，"
        f"{kept}，数据无损失）；该村暂停经此中转，改用直连或 U 盘，请核查该乡镇中转站"
    )
    return store.alert_once(REPORTED, relay, detail, now_ms)


def seen_refused(store: RelayStore, source: str, claimed: str, reason: str, now_ms: int) -> None:
    """A frame forwarded through a relay that failed verification (``claimed``: the origin it named)."""
    relay = relay_of(source)
    if relay:
        store.alert(
            SEEN,
            relay,
            f"乡镇中转站 {relay} 异常：转来的批次未通过核验，已拒收（声称来自 {claimed or '未知'}：{reason[:200]}）；"
            f"涉及村（社区）：{claimed or '未知'}。来源 {source}" + _unclaimed(store, claimed, reason),
            now_ms,
        )


def _unclaimed(store: RelayStore, claimed: str, reason: str) -> str:
    """A village enrolled by file whose claim has not reached the hub signs with a key the hub does not
    know yet: its honest township's forwarding then looks like forgery. Say the likelier cause and the
    cure (the alert stays: the hub cannot tell that village's batch from one the township made up)."""
    station = store.station(claimed) if claimed else None
    if station is None or station.sign_pub is not None or not reason.startswith("unknown_key"):
        return ""
    return (
        f"。注意：{claimed} 尚未确认接入（离线登记的接入确认文件 {claimed}_claim.sjc 还没有送到区局），"
        "这通常不是中转站的错：请把该村 sanji node export 的U盘带到区局 sanji hub import，之后转来的批次即可收下"
    )


def seen_batch(
    store: RelayStore, source: str, origin: str, result: AckResult, expected: int, first_seq: int, now_ms: int
) -> None:
    """An authentic batch that came through a relay: is the relay to blame for anything about it?"""
    relay = relay_of(source)
    if not relay:
        return
    station = store.station(origin)
    if station is None or station.parent != relay:
        store.alert(
            SEEN,
            relay,
            f"乡镇中转站 {relay} 异常：转来了非其下辖站点 {origin} 的批次（批次本身验证通过，已照常处理）；"
            f"涉及站点：{origin}。来源 {source}",
            now_ms,
        )
    elif result is AckResult.GAP:
        store.alert(
            SEEN,
            relay,
            f"乡镇中转站 {relay} 可能扣下了批次或未按次序转发：转来的 {origin} 的批次从第 {first_seq} 条起，"
            f"区局等的是第 {expected} 条；涉及村（社区）：{origin}。若该村未用 U 盘送来前面的批次，请核查该中转站",
            now_ms,
        )
