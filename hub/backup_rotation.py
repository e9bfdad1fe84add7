"""The nightly job's rotated backups: a full copy weekly, and in between only the pages that
changed since it, so a week of nightly backups costs about one copy plus what the district wrote.

A rotated backup is a file in ``HUB/backups/``, with its photos in ``FILE.blobs/`` as ``hub/backup.py``
writes them (the photos two backups share are hard links to one file). Both kinds start from a
consistent copy of ``hub.db`` made with SQLite's online backup API, which keeps every page at its page
number, so the pages that differ from the week's full copy are the ones the district changed since:
- a *full* copy, ``hub-YYYYmmdd-HHMMSS.db``, is that copy itself (a plain SQLite file, as every rotated
  backup was before); beside it ``FILE.pages`` lists an 8-byte digest of each page, so later nights
  find their changed pages without reading the full copy back;
- a *delta*, ``hub-YYYYmmdd-HHMMSS.delta``, holds the pages that differ from its full copy (named in
  its header), each with its page number, zlib-compressed, and a digest of every page's digest of the
  database it stands for, which :func:`materialize` checks before ``sanji hub restore`` puts the
  rebuilt database in place. A delta is taken against the week's full copy, not the night before, so
  restoring from any backup reads at most two files.
(``.N`` before the kind when two are taken in one second.) The full copies are not compressed: zlib
manages 45 MB/s here, a minute for a million applications' 2.6 GB, which the nightly job cannot spend.

A new full copy is taken when there is none, when the newest is :data:`FULL_EVERY` backups old, or
when more than half the pages changed. Pruning keeps the newest :data:`KEEP_BACKUPS` backups and the
full copies they stand on, so at most two full copies are on disk (seven were, before).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import zlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hub.backup import blobs_beside, copy_blobs
from hub.store.sqlite_files import backup_apart
from replica.blobstore import BlobStore
from replica.errors import Refused
from replica.ids import CHINA

if TYPE_CHECKING:
    from hub.service import Hub

MAGIC = b"SJBK"
VERSION = 1
_HEAD = struct.Struct(">4sBII32sH")  # magic, version, page size, pages, check, full copy's name length
_PAGE_NO = struct.Struct(">I")
DIGEST = 8
KEEP_BACKUPS = 7
FULL_EVERY = 7
PAGES_AT_ONCE = 256
_NAME = re.compile(r"^hub-(\d{8}-\d{6})(?:\.(\d+))?\.(db|delta)$")


def is_delta(path: Path) -> bool:
    """Whether ``path`` is a delta file (else a plain SQLite copy, or not a backup at all)."""
    with path.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def backups(folder: Path) -> list[Path]:
    """The rotated backups in ``folder``, oldest first."""
    found = []
    for path in folder.glob("hub-*"):
        m = _NAME.match(path.name)
        if m and path.is_file():
            found.append(((m.group(1), int(m.group(2) or 0)), path))
    return [p for _, p in sorted(found)]


def _head(path: Path) -> tuple[int, int, bytes, str, int]:
    """A delta's page size, page count, check, full copy's file name, and where its pages start."""
    with path.open("rb") as f:
        raw = f.read(_HEAD.size)
        if len(raw) < _HEAD.size:
            raise Refused(f"{path} 不是完整的备份文件 (truncated backup header)")
        magic, version, page_size, pages, check, base_len = _HEAD.unpack(raw)
        if magic != MAGIC or version != VERSION:
            raise Refused(f"{path} 不是本系统能读取的备份文件 (unknown backup format)")
        return page_size, pages, check, f.read(base_len).decode("utf-8"), _HEAD.size + base_len


def _page_size(db: Path) -> int:
    with db.open("rb") as f:
        size = int.from_bytes(f.read(18)[16:18], "big")
    return 65536 if size == 1 else size


def _digests(db: Path, page_size: int) -> bytes:
    """An 8-byte BLAKE2b digest of every page, in page order."""
    out = bytearray()
    with db.open("rb") as f:
        while chunk := f.read(page_size * PAGES_AT_ONCE):
            for i in range(0, len(chunk), page_size):
                out += hashlib.blake2b(chunk[i : i + page_size], digest_size=DIGEST).digest()
    return bytes(out)


def _check(digests: bytes) -> bytes:
    return hashlib.sha256(digests).digest()


def _write_delta(snapshot: Path, out: Path, base: Path, known: bytes) -> dict[str, object]:
    """Write the pages of ``snapshot`` whose digest differs from ``known`` (the full copy's)."""
    page_size = _page_size(snapshot)
    digests = _digests(snapshot, page_size)
    pages = len(digests) // DIGEST
    changed = [
        n for n in range(pages) if digests[n * DIGEST : (n + 1) * DIGEST] != known[n * DIGEST : (n + 1) * DIGEST]
    ]
    squeeze = zlib.compressobj(6)  # a few pages: worth squeezing hard
    name = base.name.encode("utf-8")
    with snapshot.open("rb") as src, out.open("wb") as dst:
        dst.write(_HEAD.pack(MAGIC, VERSION, page_size, pages, _check(digests), len(name)) + name)
        for n in changed:
            src.seek(n * page_size)
            dst.write(squeeze.compress(_PAGE_NO.pack(n + 1) + src.read(page_size)))
        dst.write(squeeze.flush())
    return {"kind": "delta", "pages": pages, "changed_pages": len(changed), "base": str(base)}


def _base_of(folder: Path, page_size: int) -> tuple[Path, bytes] | None:
    """The newest full copy with its page digests at hand, if fewer than FULL_EVERY backups were
    taken since and its pages are this database's size."""
    kept = backups(folder)
    for age, path in enumerate(reversed(kept)):
        pages = Path(str(path) + ".pages")
        if path.name.endswith(".db") and pages.is_file():
            if age >= FULL_EVERY - 1 or _page_size(path) != page_size:
                return None
            return path, pages.read_bytes()
    return None


def _new_name(folder: Path, stamp: str, kind: str) -> Path:
    n = 0
    while True:
        name = f"hub-{stamp}{f'.{n}' if n else ''}"
        if not any((folder / f"{name}.{k}").exists() for k in ("full", "delta", "db")):
            return folder / f"{name}.{kind}"
        n += 1


def rotate(hub: Hub, *, keep: int | None = KEEP_BACKUPS, source: Path | None = None) -> dict[str, object]:
    """Take tonight's backup in ``HUB/backups/`` (database and photos) and prune all but the newest
    ``keep`` (None: prune nothing yet, the caller will, or will :func:`discard` this one). ``source``:
    the database file to copy through a connection of its own (another thread's), the hub's own
    connection if None."""
    folder = hub.folder / "backups"
    folder.mkdir(exist_ok=True)
    stamp = datetime.fromtimestamp(hub.clock() / 1000, tz=CHINA).strftime("%Y%m%d-%H%M%S")
    earlier = backups(folder)
    snapshot = folder / f".snapshot-{stamp}.db"
    try:
        if source is not None:
            backup_apart(source, snapshot)
        else:
            hub.store.backup_into(snapshot)
        page_size = _page_size(snapshot)
        found = _base_of(folder, page_size)
        written: dict[str, object] | None = None
        if found is not None:
            out = _new_name(folder, stamp, "delta")
            written = _write_delta(snapshot, out, *found)
            if int(str(written["changed_pages"])) * 2 > int(str(written["pages"])):
                out.unlink()  # most of the database changed: a full copy costs no more and starts a new week
                written = None
        if written is None:
            out = _new_name(folder, stamp, "db")
            digests = _digests(snapshot, page_size)
            Path(str(out) + ".pages").write_bytes(digests)
            snapshot.rename(out)
            pages = len(digests) // DIGEST
            written = {"kind": "full", "pages": pages, "changed_pages": pages, "base": None}
    finally:
        snapshot.unlink(missing_ok=True)
    previous = blobs_beside(earlier[-1]) if earlier else None
    blobs = copy_blobs(BlobStore(hub.folder / "blobs"), blobs_beside(out), link_from=previous)
    pruned = prune(folder, keep) if keep is not None else 0
    size = out.stat().st_size
    return {"file": str(out), "bytes": size, "blobs_dir": str(blobs_beside(out)), **written, **blobs, "pruned": pruned}


def prune(folder: Path, keep: int = KEEP_BACKUPS) -> int:
    """Remove all but the newest ``keep`` backups, keeping the full copies those stand on."""
    kept = backups(folder)
    newest = kept[-keep:] if keep > 0 else []
    needed = {folder / _head(p)[3] for p in newest if p.name.endswith(".delta")}
    gone = 0
    for old in kept:
        if old in newest or old in needed:
            continue
        discard(old)
        gone += 1
    return gone


def discard(path: Path) -> None:
    """Remove one backup with its page digests and photos."""
    path.unlink(missing_ok=True)
    Path(str(path) + ".pages").unlink(missing_ok=True)
    shutil.rmtree(blobs_beside(path), ignore_errors=True)


def materialize(source: Path, out: Path) -> None:
    """Rebuild the database a delta stands for into ``out``: its full copy with the delta's pages laid
    over it, checked page by page against the digests the delta was taken with."""
    page_size, pages, check, base, start = _head(source)
    full = source.parent / base
    if not full.is_file():
        raise Refused(f"差异备份 {source} 所依据的完整备份 {full} 不存在 (its full backup is missing)")
    shutil.copyfile(full, out)
    record = _PAGE_NO.size + page_size
    try:
        with out.open("r+b") as dst, source.open("rb") as src:
            src.seek(start)
            unsqueeze = zlib.decompressobj()
            pending = b""
            while True:
                chunk = src.read(1 << 20)
                pending += unsqueeze.decompress(chunk) if chunk else unsqueeze.flush()
                whole = len(pending) - len(pending) % record
                for i in range(0, whole, record):
                    (number,) = _PAGE_NO.unpack_from(pending, i)
                    dst.seek((number - 1) * page_size)
                    dst.write(pending[i + _PAGE_NO.size : i + record])
                pending = pending[whole:]
                if not chunk:
                    break
            dst.truncate(pages * page_size)
    except zlib.error as exc:
        raise Refused(f"备份 {source} 已损坏，无法解压 (damaged: {exc})") from exc
    if _check(_digests(out, page_size)) != check:
        raise Refused(f"备份 {source} 还原后校验不符，文件已损坏 (the rebuilt database does not match its digests)")


__all__ = ["KEEP_BACKUPS", "backups", "discard", "is_delta", "materialize", "prune", "rotate"]
