"""``sanji hub prune-seal-keys``: deleting retired sealing keys that nothing in the hub still needs
(issue 16).

``hub rotate-key --seal`` keeps each sealing key it replaces in ``HUB/keys/retired_seal.bin``
(``hub/seal_keys.py``), so what stations sealed to it still opens. A retired key may go once nothing
the hub holds is sealed to it. In the hub's store that is an open held row (not yet released or
rejected): a ten-element change whose hub seal names the key (``hub/sealed_changes.py``; a change
another station re-sent is held with its seal intact, ``hub/reconcile.py``), or a whole batch held as
it came, whose body is sealed to it (the frame's ``recipient_key``). Settled rows are never opened
again. The hub keeps no feed page sealed to its own key (feed pages are sealed to the stations), and no
other seal: what it takes in is opened before it is kept. If any chosen key is still needed, nothing is
removed and the refusal says how many rows need which key, and what to do.

Seals still at the stations the hub cannot count, only bound: a station that has not reached the hub
since a key was retired (a long-offline village, a USB stick not yet imported) may still hold changes
and batches sealed to it, written before it followed the rotation. Once the key is pruned they arrive,
are held with their reason, and can then only be rejected. So the prune refuses
(``seal_key_stations_behind``) while any station not revoked was last heard of at or before the newest
chosen key's retirement (``HubStore.unheard_since``), and refuses a key retired before retirement dates
were kept (``seal_key_undated``: it cannot tell), until the operator, having decided, says
``even_if_behind`` (``--even-if-stations-behind``); the answer then names what it risked. A contact
carried by hand counts from when the hub took it in, so a stick written before the retirement and
imported after it still counts as contact: that is the limit of what the hub knows.

One kind of seal outlives any sync: a station keeps the hub seal of each minimised change, for a repair
after the hub is restored from a backup (``node/at_rest_minimise.py``). Re-sent after its key is pruned,
such a change cannot be opened (held as ``hub_seal``). So keys should be pruned only once no hub backup
older than their retirement is kept; the refusal and the answer say so.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from hub import seal_keys
from protocol.codec import unpack
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from replica.errors import Refused
from replica.ids import iso_from_ms, parse_iso_ms

if TYPE_CHECKING:
    from hub.state import HubState

PAGE = 1000  # held rows read at a time: a big quarantine is walked, never loaded whole
SHOWN = 10  # stations named in a refusal; the rest are counted
MINIMISED_NOTE = (
    "站点为已遮蔽办件保留的区局密封件也加密给当时的密钥：删除后，区局从早于退役时间的备份恢复、"
    "站点补传这些变更时将无法解开（暂存为 hub_seal，只能驳回），所以请等早于退役时间的区局备份都已删除后再删除"
)
STATIONS_WARNING = (
    "区局看不到站点手里仍加密给已删除密钥的数据（长期离线的村、未导入的U盘、已遮蔽办件留待对账补传的密封件）："
    f"这些数据以后到达时会暂存待核，只能驳回。{MINIMISED_NOTE}"
    " (seals still held at stations to a pruned key can only be rejected when they arrive)"
)
OVERRIDE = "--even-if-stations-behind"


def sealed_to(whole_batch: bool, raw: bytes) -> str | None:
    """The id of the sealing key a held row is sealed to, or None when it names none."""
    if whole_batch:
        try:
            kid = peek_header(raw).get("recipient_key")
        except RemoteProtocolError:
            return None
        return kid if isinstance(kid, str) and kid else None
    try:
        wire = unpack(raw)
    except RemoteProtocolError:
        return None
    if isinstance(wire, list) and len(wire) == 10 and isinstance(wire[9], list) and wire[9]:
        return wire[9][0] if isinstance(wire[9][0], str) else None
    return None


def needs(hub: HubState) -> dict[str, tuple[int, int]]:
    """key id -> (open held changes, open held whole batches) sealed to it."""
    counts: dict[str, tuple[int, int]] = {}
    after = 0
    while page := hub.store.open_held_page(after, PAGE):
        for _qid, whole, raw in page:
            kid = sealed_to(whole, raw)
            if kid:
                changes, batches = counts.get(kid, (0, 0))
                counts[kid] = (changes + (not whole), batches + whole)
        after = page[-1][0]
    return counts


def _day_start(text: str) -> int:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise Refused(f"日期 {text!r} 应写作 YYYY-MM-DD，如 2026-01-31 (not a date)", code="bad_date") from exc
    return parse_iso_ms(day.isoformat() + "T00:00:00")


def _chosen(hub: HubState, before: str | None, key_id: str | None) -> tuple[list[str], list[dict[str, str]]]:
    """The retired keys the options choose, and those kept with why."""
    if (before is None) == (key_id is None):
        raise Refused(
            "请用 --before 日期 或 --key-id 密钥编号（二选一）指明删除哪些已退役的加密密钥 (say which keys)",
            code="prune_what",
        )
    retired = seal_keys.retired_dated(hub.folder)
    current = hub.keys.seal_key_id
    if key_id is not None and key_id == current:
        raise Refused(f"{key_id} 是区局正在使用的加密密钥，不能删除 (the current sealing key)", code="seal_key_current")
    if key_id is not None and key_id not in {kid for kid, _ in retired}:
        raise Refused(
            f"区局文件夹中没有已退役的加密密钥 {key_id}：用 sanji hub prune-seal-keys 区局文件夹 --before 2099-01-01 "
            "--dry-run 列出全部已退役的密钥（试运行，不删除）(no such retired key)",
            code="seal_key_unknown",
        )
    limit = _day_start(before) if before is not None else 0
    chosen: list[str] = []
    kept: list[dict[str, str]] = []
    for kid, when in retired:
        if kid == current:
            kept.append({"key_id": kid, "why": "区局正在使用 (current)"})
        elif key_id is not None and kid == key_id:
            chosen.append(kid)
        elif key_id is not None:
            kept.append({"key_id": kid, "why": "未指定 (not named)"})
        elif when is None:
            why = "退役日期未记录（较早版本退役的），请用 --key-id 指定 (retired before dates were kept)"
            kept.append({"key_id": kid, "why": why})
        elif when >= limit:
            kept.append({"key_id": kid, "why": f"于 {iso_from_ms(when)} 退役，不早于 {before} (retired since)"})
        else:
            chosen.append(kid)
    return chosen, kept


def _when(ms: int) -> str:
    return iso_from_ms(ms)[:16].replace("T", " ")


def _named(behind: list[tuple[str, int | None]]) -> str:
    """The stations behind, the first few with when the hub last heard of them, the rest counted."""
    shown = "、".join(f"{code}（{'最近 ' + _when(seen) if seen else '从未同步'}）" for code, seen in behind[:SHOWN])
    return shown + (f" 等共 {len(behind)} 个" if len(behind) > SHOWN else "")


def _stations_risk(hub: HubState, chosen: list[str], even_if_behind: bool) -> tuple[list[str], list[str]]:
    """What pruning ``chosen`` risks at the stations, refused unless ``even_if_behind``: the keys whose
    retirement was never dated, and the stations not heard of since the newest dated one."""
    dates = dict(seal_keys.retired_dated(hub.folder))
    undated = [kid for kid in chosen if dates.get(kid) is None]
    dated = [when for kid in chosen if (when := dates.get(kid)) is not None]
    since = max(dated) if dated else None
    behind = hub.store.unheard_since(since) if since is not None else []
    if undated and not even_if_behind:
        raise Refused(
            f"加密密钥 {'、'.join(undated)} 的退役日期未记录（较早版本退役的），"
            "区局无法判断哪些站点仍持有加密给它的数据，"
            f"一个也没有删除：请用 sanji hub status 确认各站点最近同步时间都晚于它退役之时，确已决定时加 {OVERRIDE}。"
            f"{MINIMISED_NOTE} (when these keys were retired is unknown)",
            code="seal_key_undated",
        )
    if behind and not even_if_behind:
        raise Refused(
            f"{len(behind)} 个站点自 {_when(since or 0)} 密钥退役以来未与区局同步：{_named(behind)}。"
            "它们可能仍持有加密给该密钥的数据（离线期间的办件、未导入的U盘），删除后这些数据到达时只能驳回，"
            "一个也没有删除：请等这些站点同步（sanji hub status 查看），或撤销不再使用的站点；"
            f"确已决定放弃核对这些数据时加 {OVERRIDE}。{MINIMISED_NOTE}"
            f" ({len(behind)} stations have not synced since the key was retired)",
            code="seal_key_stations_behind",
        )
    return [code for code, _ in behind], undated


def _risked(behind: list[str], undated: list[str]) -> str:
    """What an override risked, in the answer and the alert."""
    parts = [f"{len(behind)} 个站点自密钥退役以来未同步（{'、'.join(behind[:SHOWN])}）"] if behind else []
    parts += [f"密钥 {'、'.join(undated)} 退役日期未记录，无法判断站点是否已同步"] if undated else []
    return f"按 {OVERRIDE} 删除：{'；'.join(parts)}，站点手里仍加密给这些密钥的数据到达时只能驳回，不能再核对放行"


def prune(
    hub: HubState,
    *,
    before: str | None = None,
    key_id: str | None = None,
    dry_run: bool = False,
    even_if_behind: bool = False,
) -> dict[str, object]:
    """Remove the chosen retired sealing keys if nothing held still needs them (else ``seal_key_in_use``)
    and every station has reached the hub since they were retired (else ``seal_key_stations_behind``,
    or ``seal_key_undated`` when that cannot be told), removing none on a refusal. ``even_if_behind``:
    the operator has decided to prune anyway; the answer names what that risked. ``dry_run``: say what
    would go, remove nothing."""
    chosen, kept = _chosen(hub, before, key_id)
    need = needs(hub)
    blocked = {kid: need[kid] for kid in chosen if kid in need}
    if blocked:
        changes = sum(c for c, _ in blocked.values())
        batches = sum(b for _, b in blocked.values())
        names = "、".join(f"{kid}（{c} 条变更、{b} 批整批）" for kid, (c, b) in blocked.items())
        raise Refused(
            f"仍有 {changes} 条暂存待核的变更和 {batches} 批整批暂存加密给要删除的密钥 {names}，一个也没有删除："
            "请先用 sanji hub quarantine 查看，放行或驳回这些暂存后再删除"
            f" ({changes} held changes and {batches} held batches are still sealed to these keys)",
            code="seal_key_in_use",
        )
    behind, undated = _stations_risk(hub, chosen, even_if_behind) if chosen else ([], [])
    risked = _risked(behind, undated) if behind or undated else ""
    removed = [] if dry_run or not chosen else seal_keys.remove(hub.folder, set(chosen))
    if removed:
        with hub.store.transaction():  # operators see key changes among the alerts (as rotate-key's)
            note = f"已删除已退役的加密密钥 {'、'.join(removed)}" + (f"；{risked}" if risked else "")
            hub.store.alert("hub_key", "", note, hub.clock())
    return {
        "dry_run": dry_run,
        "removed": removed,
        "would_remove": chosen if dry_run else [],
        "kept": kept,
        "risked": {"stations_behind": behind, "undated": undated, "what": risked} if risked else None,
        "warning": STATIONS_WARNING if chosen else "",
    }


def text(d: dict[str, object]) -> str:
    """The answer without ``--json``."""
    lines = []
    gone = d["would_remove"] if d["dry_run"] else d["removed"]
    verb = "将删除（试运行，未删除）" if d["dry_run"] else "已删除"
    lines.append(f"{verb}：{'、'.join(gone)}" if gone else "没有要删除的已退役加密密钥")  # type: ignore[arg-type]
    for k in d["kept"]:  # type: ignore[attr-defined]
        lines.append(f"保留 {k['key_id']}：{k['why']}")
    if d["risked"]:
        lines.append(f"风险：{d['risked']['what']}")  # type: ignore[index]
    if d["warning"]:
        lines.append(f"注意：{d['warning']}")
    return "\n".join(lines)
