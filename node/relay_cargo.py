"""USB through the township: a village's exported files taken at the township as relay cargo
(``node import T /media/usb``), and what the hub sent back for that village written out for it
(``node export T --for CODE --out FOLDER``).

A village's claim (``V_claim.sjc``, its offline enrolment) is cargo too: the round carries it to the
hub's ``POST /v1/enroll/claim`` before the village's batches, which the hub could not check without it.

The cargo joins the same queue as what villages push over the relay listener (node/relay_queue.py),
and the township's next round with the hub carries it. Nothing is opened or signed here: the files
leave as they came, and the village verifies what it gets with its pinned hub key on import.

A pull request read from a stick is carried too. It has no nonce and may be hours old by the time the
township's round carries it: the hub answers such a status as ``hub export`` would (from its cursor),
unlike an online pull older than 15 minutes, so a village that only travels by USB gets the hub's
decisions back on its stick (hub/web/sync.py ``_pull_identity``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from node.relay_queue import DB_NAME, RELAY_TIERS, RelayQueue, is_village_of, kept_keys, outer
from node.station import Station
from protocol.codec import unpack
from protocol.enrolment import CLAIM_MAGIC, decode_claim
from protocol.errors import RemoteProtocolError
from protocol.hubkeys import KEYS_MAGIC
from replica import carried_files
from replica.errors import Refused


def add_serve_arguments(p: Any) -> None:
    p.add_argument("--relay-port", type=int, help="乡镇：为下辖村转发的端口（只开放转发接口）")
    p.add_argument("--relay-host", default="127.0.0.1", help="转发端口监听的地址（默认 127.0.0.1）")
    p.add_argument("--relay-url", default="", help="告诉本乡镇所辖村站的转发地址，如 http://10.1.2.3:8801")


def split_cargo(st: Station, paths: list[Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """Take the files on a stick that one of this township's villages wrote for the hub into the relay
    queue; return the files left for the township's own import, and what was taken (or refused)."""
    if st.tier not in RELAY_TIERS:
        return paths, []
    kept: list[Path] = []
    taken: list[dict[str, str]] = []
    batches: dict[str, list[tuple[tuple[int, int], Path, bytes]]] = {}
    pulls: list[tuple[Path, bytes]] = []
    claims: list[tuple[Path, bytes]] = []
    for path in paths:
        try:
            data = carried_files.read(path)
            if data.startswith(CLAIM_MAGIC) and is_village_of(st.code, _claimant(data)):
                claims.append((path, data))
                continue
            head = outer(data)
        except (carried_files.CarriedFileRefused, RemoteProtocolError, OSError):
            kept.append(path)  # the township's own import refuses it with its reason
            continue
        if not is_village_of(st.code, head.origin):
            kept.append(path)
        elif head.kind == "batch":
            batches.setdefault(head.origin, []).append(((head.epoch, head.first_seq), path, data))
        elif head.kind == "pull":
            pulls.append((path, data))
        else:
            kept.append(path)
    if not batches and not pulls and not claims:
        return kept, []
    queue = RelayQueue(st.folder, st.code)
    try:
        for path, data in claims:  # forwarded ahead of the village's batches, which its keys sign
            try:
                village = queue.offer_claim(data, st.clock())
                taken.append({"file": str(path), "village": village, "kind": "claim"})
            except Refused as exc:
                taken.append({"file": str(path), "refused": str(exc)})
        for village, found in sorted(batches.items()):
            files = [(p, data) for _, p, data in sorted(found, key=lambda f: (f[0], f[1].name))]  # chain order
            try:
                # The hub's acks waiting for the village stay for `export --for`: handed over here,
                # nobody would take them, and a village by stick would never see its receipts.
                offered = queue.offer_up([data for _, data in files], st.clock(), hand_over=False)
            except Refused as exc:
                taken += [{"file": str(p), "village": village, "refused": str(exc)} for p, _ in files]
                continue
            # As far as the quota had room, in order; the rest stays on the stick's way home, refused.
            taken += [{"file": str(p), "village": village, "kind": "batch"} for p, _ in files[: offered.taken]]
            why = str(offered.refusal) if offered.refusal is not None else ""
            taken += [{"file": str(p), "village": village, "refused": why} for p, _ in files[offered.taken :]]
        # The newest status per village: only the newest pull request is worth carrying.
        for path, data in sorted(pulls, key=lambda p: p[0].name):
            try:
                got = queue.offer_pull(data, st.clock(), hand_over=False)
                taken.append({"file": str(path), "village": got.village, "kind": "pull"})
            except Refused as exc:
                taken.append({"file": str(path), "refused": str(exc)})
    finally:
        queue.close()
    return kept, taken


def export_for(st: Station, village: str, out: Path) -> dict[str, object]:
    """Write the hub's answers waiting at this township for ``village`` (acks and feed pages, as the hub
    signed them), and forget them here: the stick carries them now."""
    if st.tier not in RELAY_TIERS:
        raise Refused("只有乡镇（街道）站点为下辖村转发：本站没有可导出的转发内容", code="not_a_township")
    if not is_village_of(st.code, village):
        raise Refused(
            f"{village} 不是本乡镇的下辖村（社区），没有为它转发的内容：请核对站点编码 (not a village of {st.code})",
            code="not_our_village",
        )
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    kept = kept_keys(st.folder)
    if kept is not None:
        # First on the stick, as `hub export` writes it: after a rotation the receipts and pages are
        # signed by a key only this history names, and a village by stick has no other way to it.
        version = _version(kept)
        name = out / f"{village}_keys_v{version:04d}.sjk"
        name.write_bytes(KEYS_MAGIC + kept)
        files.append(str(name))
    if (st.folder / DB_NAME).exists():
        queue = RelayQueue(st.folder, st.code)
        try:
            waiting = queue.waiting_down(village)
            for _, kind, data in waiting:
                what = "receipts" if kind == "acks" else "feed"
                name = out / f"{village}_{what}_{hashlib.sha256(data).hexdigest()[:12]}.sjd"
                name.write_bytes(data)
                files.append(str(name))
            queue.forget([i for i, _, _ in waiting])  # only once every file is written
        finally:
            queue.close()
    return {"files": files, "village": village}


def _claimant(data: bytes) -> str:
    """The station a claim names ('' when it cannot be read: the township's import skips it then)."""
    try:
        return decode_claim(data)[0]
    except RemoteProtocolError:
        return ""


def _version(kept: bytes) -> int:
    """The key list version the kept history reaches, for the file's name (0 when it cannot be read:
    the village's import refuses the file with its reason)."""
    try:
        bundle = unpack(kept)
    except RemoteProtocolError:
        return 0
    version = bundle.get("version") if isinstance(bundle, dict) else None
    return version if isinstance(version, int) and 0 <= version < 10**4 else 0
