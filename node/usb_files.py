"""Sync by hand, for a station with no network: export its batches to a USB stick, import the hub's
files from one.

The same frames as the online path (``node/uplink.py``), written to and read from files: batches and the
claim go out, feed pages, catalogue releases, acknowledgements, key files and the hub's list of held
photos come in. Files are read with ``replica/carried_files.py`` (no link followed, size checked before a
byte is read); feed pages go through ``node/feed_quarantine.py`` like pulled ones.
"""

from __future__ import annotations

from pathlib import Path

from node import blobs, feed_quarantine, hubkeys, relay_cargo, uplink
from node.station import Station
from protocol.acks import Acks
from protocol.batch import span_filename
from protocol.document import open_document
from protocol.enrolment import CLAIM_MAGIC, decode_claim
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from replica import carried_files
from replica.errors import Refused
from replica.ids import iso_from_ms
from replica.rejection_words import explain
from sync.catalogue import CatalogueError


def export(st: Station, out: Path) -> dict[str, object]:
    uplink.build_outbox(st)
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    if not st.meta.get("enrolled", False):
        path = out / f"{st.code}_claim.sjc"
        path.write_bytes(uplink.claim_file(st))
        files.append(str(path))
    changes = 0
    for outgoing, frame in uplink.unsettled(st):
        path = out / span_filename(st.code, outgoing.epoch, outgoing.first_seq, outgoing.last_seq)
        path.write_bytes(frame)
        files.append(str(path))
        changes += outgoing.last_seq - outgoing.first_seq + 1
    photos = blobs.export(st, out)  # after the batches that name them; sealed to the hub
    # Where this station stands (feed applied, catalogue, backlog), for the hub's dashboard and for its
    # next export to start from here: the same signed body an online pull carries. The hub reads it after
    # the claim, so a station not yet enrolled sends one too.
    path = out / f"{st.code}_status_{st.clock():013d}.sjd"
    path.write_bytes(uplink.pull_frame(st, st.meta.int("feed_cursor")))
    files.append(str(path))
    return {"files": files + photos, "changes": changes, "blobs": len(photos)}


def import_files(st: Station, paths: list[Path]) -> dict[str, object]:
    """Apply hub files carried by hand: feed pages, catalogue releases, acknowledgements."""
    found, refused = _expand(paths)
    rejected = [r.row() for r in refused]
    older: list[dict[str, str]] = []
    found, relayed = relay_cargo.split_cargo(st, found)  # at a township: its villages' files, for the hub
    found, skipped, claims = _for_this_station(st, found)
    accepted, key_refused, found = hubkeys.import_key_files(st, found)  # before the pages they sign
    rejected += key_refused
    for path in found:
        try:
            data = carried_files.read(path)  # size-checked before a byte is read; links never followed
            kind = str(peek_header(data).get("kind", ""))
            if kind == "feed":
                held = st.meta.int("hub_time")
                page = feed_quarantine.take_page(st, data, source=f"file:{path.name}")
                if page.result is None:
                    raise Refused(page.problem)
                if 0 < page.result.hub_ms < held:  # genuine, but not news: say so rather than plain success
                    older.append(
                        {
                            "file": str(path),
                            "reason": (
                                f"该数据页比本站已有的区局数据旧（页面时间 {iso_from_ms(page.result.hub_ms)}，本站已有 "
                                f"{iso_from_ms(held)}），已核验，已有的变更不会重复应用 (older than what this station "
                                "holds)；如需最新数据请向区局重新导出"
                            ),
                        }
                    )
            elif kind == "catalogue":
                with st.transaction():
                    _, outcome = st.store_catalogue(data)
                if outcome == "rollback_refused":
                    raise Refused("这一版事项目录比本站已有的旧，未采用；无须处理 (rollback refused)")
            elif kind == Acks.KIND:
                doc = open_document(data, kind=Acks.KIND, recipient=st.code, verify_key=st.hub_key)
                uplink.record_acks(st, doc)
            elif kind == "blobs_held":  # the hub holds these photos: they may be purged here
                blobs.import_held(st, data)
            else:
                raise Refused(f"不是区局发给本站的文件，未导入：请只导入区局为本站导出的文件 (kind {kind!r})")
            accepted += 1
        except carried_files.CarriedFileRefused as exc:
            rejected.append(exc.refusal.row())
        except RemoteProtocolError as exc:
            rejected.append({"file": str(path), "reason": explain(exc.code, str(exc))})
        except CatalogueError as exc:
            rejected.append({"file": str(path), "reason": f"事项目录有误，未采用：请向区局重新导出 ({exc})"})
        except OSError as exc:
            rejected.append(
                {"file": str(path), "reason": f"无法读取，未导入：请检查U盘和文件权限 ({exc.strerror or exc})"}
            )
        except Refused as exc:
            rejected.append({"file": str(path), "reason": str(exc)})
    if accepted:
        with st.transaction():  # a file exchange is a USB-only station's sync: status says when it was
            st.meta.set("last_import", st.clock())
    rejected += [{"file": r["file"], "reason": r["refused"]} for r in relayed if "refused" in r]
    accepted += sum(1 for r in relayed if "refused" not in r)
    out = {"accepted": accepted, "rejected": rejected, "older": older, "skipped": skipped, "relayed": relayed}
    return {**out, "claims_for_hub": claims}


def _for_this_station(st: Station, paths: list[Path]) -> tuple[list[Path], int, list[str]]:
    """The files not addressed away from this station (its own exports, other stations' batches for
    the hub), how many were skipped, and the other stations whose claim (offline enrolment) was among
    them: a township carries its own villages' claims as relay cargo (node/relay_cargo.py takes them
    first), so those left here are other stations', which staff take to the district. A file that
    cannot be read stays, to be refused with why."""
    kept, skipped, claims = [], 0, []
    for path in paths:
        try:
            data = carried_files.read(path)
        except carried_files.CarriedFileRefused:
            kept.append(path)
            continue
        if carried_files.going_the_other_way(data, hub_id=st.hub_id, at_hub=False):
            skipped += 1
            if data.startswith(CLAIM_MAGIC) and (code := _claimant(data)) not in ("", st.code):
                claims.append(code)
        else:
            kept.append(path)
    return kept, skipped, claims


def _claimant(data: bytes) -> str:
    try:
        return decode_claim(data)[0]
    except RemoteProtocolError:
        return ""


def _expand(paths: list[Path]) -> tuple[list[Path], list[carried_files.Refusal]]:
    """The files named, and those directly in the folders named (a stick may hold other stations'
    folders below), without following a link; what was not a readable regular file, with why."""
    try:
        found, refused = carried_files.collect(paths)
    except FileNotFoundError as exc:
        raise Refused(f"{exc.filename} 不存在 (does not exist)；请检查路径，U盘是否已插好") from exc
    named = set(paths)
    return (
        [p for p in found if p in named or p.parent in named],
        [r for r in refused if r.path in named or r.path.parent in named],
    )
