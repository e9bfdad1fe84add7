"""A field device's photos and scans: stored by content, tracked until the hub holds them, then purged.

Files live under ``DIR/blobs/ab/cdef…`` (``replica/blobstore.py``), never in SQLite, so the database
stays small and a photo taken into two reports is kept once. Two tables of this module's own
migration set say what each file is for:
- ``blobs``: one row per blob, with ``at_hub_ms`` set once the hub has said it holds the whole blob
  (over HTTP, or in a signed ``blobs_held`` list carried back by hand) and ``purged_ms`` once the
  local file has been deleted after the retention period;
- ``blob_refs``: which report names which blob, and as what (``photo`` or ``signature``).
A blob is *pending* while no hub confirmation has come: ``node sync`` uploads it, ``node export``
writes it out sealed to the hub.
"""

from __future__ import annotations

from pathlib import Path

from node.station import Station
from protocol.blob import MAX_BLOB_BYTES, BlobRequest, BlobsHeld
from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from protocol.keys import load_seal_public
from protocol.wire import sign_message
from replica.blobstore import BlobError, BlobStore, sha256_file
from replica.errors import Refused


def store_of(st: Station) -> BlobStore:
    """The device's blob files. Their tracking tables exist from the store's open (node/store.py)."""
    return BlobStore(st.folder / "blobs")


def check_file(path: Path, what: str) -> tuple[str, int]:
    """(sha256, size) of a photo or scan the inspector names, or a refusal saying what is wrong."""
    try:
        sha, size = sha256_file(path, max_bytes=MAX_BLOB_BYTES)
    except BlobError:
        raise Refused(
            f"{what}文件 {path} 超过 {MAX_BLOB_BYTES // (1024 * 1024)} MiB 的上限：请用较低的分辨率重拍或重扫"
            " (larger than the cap)"
        ) from None
    except IsADirectoryError:
        raise Refused(f"{what} {path} 是文件夹，不是文件：请指定其中的文件 (a folder, not a file)") from None
    except FileNotFoundError:
        raise Refused(f"{what}文件 {path} 不存在：请检查路径 (does not exist)") from None
    except OSError as exc:
        raise Refused(f"无法读取{what}文件 {path}：请检查文件权限后重试 ({exc.strerror or exc})") from None
    if size == 0:
        raise Refused(f"{what}文件 {path} 是空的：请重新拍摄或扫描 (empty)")
    return sha, size


def keep(st: Station, path: Path, expected: str) -> None:
    """Copy a checked file into the store (outside any transaction: an unreferenced file is harmless)."""
    try:
        sha, _ = store_of(st).put_file(path, max_bytes=MAX_BLOB_BYTES)
    except (BlobError, OSError) as exc:
        raise Refused(f"无法保存文件 {path}：请检查本机磁盘空间后重新提交报告 (cannot store: {exc})") from None
    if sha != expected:
        raise Refused(f"文件 {path} 在记录时被改动了：请重新提交报告 (changed while it was being recorded)")


def reference(st: Station, report: str, sha: str, size: int, role: str) -> None:
    """Note that ``report`` names ``sha``. Call inside the transaction that writes the report."""
    st.conn.execute(
        "INSERT INTO blobs (sha256, size, added_ms) VALUES (?,?,?)"
        " ON CONFLICT(sha256) DO UPDATE SET purged_ms=NULL",  # taken again after a purge: keep it again
        (sha, size, st.clock()),
    )
    st.conn.execute("INSERT OR IGNORE INTO blob_refs (report, sha256, role) VALUES (?,?,?)", (report, sha, role))


def pending(st: Station) -> list[tuple[str, int]]:
    """(sha256, size) of every blob the hub has not confirmed yet, oldest first."""
    store_of(st)
    rows = st.conn.execute(
        "SELECT sha256, size FROM blobs WHERE at_hub_ms IS NULL AND purged_ms IS NULL ORDER BY added_ms, rowid"
    ).fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


def mark_held(st: Station, shas: list[str]) -> int:
    """Record the hub's word that it holds these blobs. Returns how many were news."""
    store_of(st)
    n = 0
    with st.transaction():
        for sha in shas:
            cur = st.conn.execute(
                "UPDATE blobs SET at_hub_ms=? WHERE sha256=? AND at_hub_ms IS NULL", (st.clock(), sha)
            )
            n += cur.rowcount
    return n


def export(st: Station, out: Path) -> list[str]:
    """Write every pending blob as one signed file sealed to the hub, for `node export`."""
    store = store_of(st)
    hub_seal = st.meta.bytes("hub_seal_pub")
    files: list[str] = []
    for sha, size in pending(st):
        if not store.has(sha):
            continue
        data = store.read(sha)
        doc = sign_message(
            BlobRequest("file", sha, size, data=data),
            signer=st.code,
            recipient=st.hub_id,
            signing_key=st.keys.sign,
            seal_to=load_seal_public(hub_seal),
            recipient_key=st.meta.text("hub_seal_key_id"),
            extra_header={"sha256": sha},
            compress_level=1,  # photos are compressed already
        )
        path = out / f"{st.code}_blob_{sha}.sjo"
        path.write_bytes(doc.frame)
        files.append(str(path))
    return files


def import_held(st: Station, data: bytes) -> int:
    """Apply a hub-signed ``blobs_held`` list carried by hand."""
    try:
        doc = open_document(data, kind=BlobsHeld.KIND, recipient=st.code, verify_key=st.hub_key)
    except RemoteProtocolError as exc:
        raise Refused(f"区局的已收照片清单核验未通过，未采用：请向区局重新导出 (does not verify: {exc})") from exc
    try:
        held = BlobsHeld.from_wire(doc.body)
    except RemoteProtocolError as exc:
        raise Refused(f"区局的已收照片清单格式不对，未采用：请向区局重新导出 (malformed: {exc})") from exc
    return mark_held(st, list(held.held))
