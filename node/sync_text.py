"""What `sanji node sync` says as it goes and when it is done, beyond the counts (node/cli.py)."""

from __future__ import annotations

import sys


def print_progress(what: str, done: int, of: int) -> None:
    if what == "push":
        print(f"已上传 {done}/{of} 条变更", file=sys.stderr, flush=True)
    else:
        print(f"已下载 {done} 条变更（第 {of} 页，还有更多）", file=sys.stderr, flush=True)


def blob_text(blobs: dict[str, object]) -> str:
    """An inspector wants to know whether the photos reached the hub before leaving the signal."""
    complete, pending = int(str(blobs.get("complete") or 0)), int(str(blobs.get("pending") or 0))
    if not complete and not pending:
        return ""
    return f"；照片 {complete} 个已送达区局" + (f"，{pending} 个待传（下次同步续传）" if pending else "")


def pulled_text(d: dict[str, object]) -> str:
    """What a round brought down: its changes, and the staff accounts the feed applied, which are not
    changes (after `hub disable-staff` the account is disabled here; "下载 0 条" alone said nothing came)."""
    staff = int(str(d.get("staff") or 0))
    return f"下载 {d.get('pulled', 0)} 条" + (f"（另有工作人员账户更新 {staff} 个）" if staff else "")


def relay_text(d: dict[str, object]) -> str:
    """A round through the township: staff should know the batches wait there for the township's own
    round with the hub, and are counted as sent only once the hub's receipt comes back."""
    if d.get("via") != "relay":
        return ""
    # relayed_batches counts what was left there this round; one the hub's receipt already settled
    # (pending 0) needs no word.
    left = int(str(d.get("relayed_batches") or 0)) if int(str(d.get("pending") or 0)) else 0
    return "；经乡镇转发站同步" + (f"：{left} 批已交乡镇，待乡镇转交区局（区局的回执带回后才算上传）" if left else "")


def export_text(d: dict[str, object], out: object) -> str:
    """What `node export` says: at a township with ``--for``, whose data it is and, when nothing waits,
    how the hub's answer comes to wait there (the village's stick imported, then a round with the hub)."""
    files = d["files"]
    assert isinstance(files, list)
    village = d.get("village")
    if not village:
        return f"已写出 {len(files)} 个文件（{d.get('changes', 0)} 条变更）到 {out}"
    if not files:
        return (
            f"没有区局发给 {village} 的待取数据：请先导入该村的U盘（sanji node import），"
            "本站同步（sanji node sync）后再导出"
        )
    return f"已写出 {len(files)} 个区局发给 {village} 的文件到 {out}：请交该村导入（sanji node import）"


def import_notes(d: dict[str, object]) -> str:
    """What `node import` adds at a township: how many of the files it keeps for the hub (its villages'
    claims among them, forwarded ahead of their batches), and the claims of stations that are not its
    villages (``claims_for_hub``), which it does not carry: those must reach the district by hand."""
    relayed = d.get("relayed")
    taken = sum(1 for r in relayed if "refused" not in r) if isinstance(relayed, list) else 0
    notes = f"\n  其中 {taken} 个是下辖村交来的转发件，本站下次同步时转交区局" if taken else ""
    for r in relayed if isinstance(relayed, list) else []:
        if r.get("kind") == "claim":
            notes += f"\n  {r['village']} 的接入确认文件（离线登记）本站下次同步时先于它的批次转交区局"
    claims = d.get("claims_for_hub")
    for code in claims if isinstance(claims, list) else []:
        notes += (
            f"\n  {code} 的接入确认文件（{code}_claim.sjc）不是本乡镇下辖村的，本站不转交：该站离线登记后若还没有"
            "在区局导入过它，请带到区局 sanji hub import（导入过的不必理会）"
        )
    return notes
