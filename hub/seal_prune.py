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

What the hub cannot see: seals still at the stations (a village offline since before the rotation, a
USB stick in a drawer, the hub seals a station keeps beside minimised changes for a repair after a hub
restore, ``node/at_rest_minimise.py``). Once their key is pruned, they arrive and are held with their
reason, and can then only be rejected. So the answer says so, every time.
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
STATIONS_WARNING = (
    "区局看不到站点手里仍加密给已删除密钥的数据（长期离线的村、未导入的U盘、已遮蔽办件留待对账补传的密封件）："
    "这些数据以后到达时会暂存待核，只能驳回"
    " (seals still held at stations to a pruned key can only be rejected when they arrive)"
)


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


def prune(
    hub: HubState, *, before: str | None = None, key_id: str | None = None, dry_run: bool = False
) -> dict[str, object]:
    """Remove the chosen retired sealing keys if nothing held still needs them; refuse otherwise
    (``seal_key_in_use``, removing none). ``dry_run``: say what would go, remove nothing."""
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
    removed = [] if dry_run or not chosen else seal_keys.remove(hub.folder, set(chosen))
    if removed:
        with hub.store.transaction():  # operators see key changes among the alerts (as rotate-key's)
            hub.store.alert("hub_key", "", f"已删除已退役的加密密钥 {'、'.join(removed)}", hub.clock())
    return {
        "dry_run": dry_run,
        "removed": removed,
        "would_remove": chosen if dry_run else [],
        "kept": kept,
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
    if d["warning"]:
        lines.append(f"注意：{d['warning']}")
    return "\n".join(lines)
