"""The nightly job's rotated backups: a compressed full copy weekly, and in between only the pages
that changed since it, so seven nights cost about one full copy plus what the district wrote.

A rotated backup is a file in ``HUB/backups/`` named ``hub-YYYYmmdd-HHMMSS.full`` or ``….delta``
(``.N`` before the kind when two are taken in one second), with its photos in ``FILE.blobs/`` as
``hub/backup.py`` writes them (the photos two backups share are hard links to one file). Both kinds
start from a consistent copy of ``hub.db`` made with SQLite's online backup API, which keeps every
page at its page number, so the pages that differ from last week's are the ones the district changed:
- a *full* file holds every page, zlib-compressed; beside it ``FILE.pages`` lists an 8-byte digest of
  each page, so later nights find their changed pages without reading the full copy back;
- a *delta* file holds the pages that differ from its full copy (named in its header), each with its
  page number, zlib-compressed. A delta is taken against the week's full copy, not the night before,
  so restoring from any backup reads at most two files.
Every file's header holds the SHA-256 of the database it stands for: :func:`materialize` checks the
database it rebuilds against it before ``sanji hub restore`` puts it in place.

A new full copy is taken when there is none, when the newest is :data:`FULL_EVERY` backups old, or
when more than half the pages changed. Pruning keeps the newest :data:`KEEP_BACKUPS` backups and the
full copies they stand on. Copies from before (``hub-….db``, plain SQLite files) are pruned the same
way and restore as before.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import zlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from hub.backup import blobs_beside, copy_blobs
from replica.blobstore import BlobStore
from replica.db import backup_to
from replica.errors import Refused
from replica.ids import CHINA

if TYPE_CHECKING:
    from hub.service import Hub

MAGIC = b"SJBK"
VERSION = 1
_HEAD = struct.Struct(">4sBcII32sH")  # magic, version, kind, page size, pages, sha256, base name length
_PAGE_NO = struct.Struct(">I")
KEEP_BACKUPS = 7
FULL_EVERY = 7
PAGES_AT_ONCE = 256
_NAME = re.compile(r"^hub-(\d{8}-\d{6})(?:\.(\d+))?\.(full|delta|db)$")


def _digest(page: bytes) -> bytes:
    return hashlib.blake2b(page, digest_size=8).digest()


def is_rotated(path: Path) -> bool:
    """Whether ``path`` is a full or delta file (not a plain SQLite copy)."""
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


def _head(path: Path) -> tuple[str, int, int, bytes, str, int]:
    with path.open("rb") as f:
        raw = f.read(_HEAD.size)
        if len(raw) < _HEAD.size:
            raise Refused(f"{path} 不是完整的备份文件 (truncated backup header)")
        magic, version, kind, page_size, pages, sha, base_len = _HEAD.unpack(raw)
        if magic != MAGIC or version != VERSION or kind not in (b"F", b"D"):
            raise Refused(f"{path} 不是本系统能读取的备份文件 (unknown backup format)")
        base = f.read(base_len).decode("utf-8")
        return kind.decode(), page_size, pages, sha, base, _HEAD.size + base_len


def _page_size(snapshot: Path) -> int:
    with snapshot.open("rb") as f:
        raw = f.read(18)[16:18]
    size = int.from_bytes(raw, "big")
    return 65536 if size == 1 else size


def _pages(f: BinaryIO, page_size: int) -> list[bytes]:
    chunk = f.read(page_size * PAGES_AT_ONCE)
    return [chunk[i : i + page_size] for i in range(0, len(chunk), page_size)]


def _write(snapshot: Path, out: Path, base: tuple[str, bytes] | None) -> dict[str, object]:
    """Write ``snapshot`` as a full file (``base`` None) or as the pages differing from ``base``
    (its file name and page digests). Returns what was written; ``changed`` counts the pages kept."""
    page_size = _page_size(snapshot)
    total = snapshot.stat().st_size // page_size
    sha = hashlib.sha256()
    digests = bytearray()
    kind, base_name = (b"D", base[0]) if base else (b"F", "")
    known = base[1] if base else b""
    changed = 0
    squeeze = zlib.compressobj(1)
    with snapshot.open("rb") as src, out.open("wb") as dst:
        name = base_name.encode("utf-8")
        dst.write(_HEAD.pack(MAGIC, VERSION, kind, page_size, total, bytes(32), len(name)) + name)
        number = 0
        while pages := _pages(src, page_size):
            parts = []
            for page in pages:
                sha.update(page)
                number += 1
                d = _digest(page)
                if base is None:
                    digests += d
                    parts.append(page)
                elif known[(number - 1) * 8 : number * 8] != d:
                    parts.append(_PAGE_NO.pack(number) + page)
                    changed += 1
            dst.write(squeeze.compress(b"".join(parts)))
        dst.write(squeeze.flush())
        dst.seek(0)
        dst.write(_HEAD.pack(MAGIC, VERSION, kind, page_size, total, sha.digest(), len(name)))
    if base is None:
        Path(str(out) + ".pages").write_bytes(bytes(digests))
        changed = total
    return {"kind": "full" if base is None else "delta", "pages": total, "changed_pages": changed}


def _base_of(folder: Path) -> tuple[Path, int] | None:
    """The newest full copy whose page digests are at hand, and how many backups were taken since."""
    kept = backups(folder)
    for i in range(len(kept) - 1, -1, -1):
        path = kept[i]
        if path.name.endswith(".full") and Path(str(path) + ".pages").is_file():
            return path, len(kept) - 1 - i
    return None


def _new_name(folder: Path, stamp: str, kind: str) -> Path:
    n = 0
    while True:
        name = f"hub-{stamp}{f'.{n}' if n else ''}"
        if not any((folder / f"{name}.{k}").exists() for k in ("full", "delta", "db")):
            return folder / f"{name}.{kind}"
        n += 1


def rotate(hub: Hub, *, keep: int = KEEP_BACKUPS) -> dict[str, object]:
    """Take tonight's backup in ``HUB/backups/`` (database and photos) and prune the old ones."""
    folder = hub.folder / "backups"
    folder.mkdir(exist_ok=True)
    stamp = datetime.fromtimestamp(hub.clock() / 1000, tz=CHINA).strftime("%Y%m%d-%H%M%S")
    earlier = backups(folder)
    snapshot = folder / f".snapshot-{stamp}.db"
    try:
        backup_to(hub.store.db, snapshot)
        found = _base_of(folder)
        written: dict[str, object] | None = None
        out = _new_name(folder, stamp, "delta")
        if found is not None and found[1] < FULL_EVERY - 1 and _head(found[0])[1] == _page_size(snapshot):
            digests = Path(str(found[0]) + ".pages").read_bytes()
            written = _write(snapshot, out, (found[0].name, digests))
            if int(str(written["changed_pages"])) * 2 > int(str(written["pages"])):
                out.unlink()  # most of the database changed: a full copy costs no more and starts a new week
                written = None
        if written is None:
            out = _new_name(folder, stamp, "full")
            written = _write(snapshot, out, None)
            written["base"] = None
        else:
            written["base"] = str(found[0]) if found else None
    finally:
        snapshot.unlink(missing_ok=True)
    previous = blobs_beside(earlier[-1]) if earlier else None
    blobs = copy_blobs(BlobStore(hub.folder / "blobs"), blobs_beside(out), link_from=previous)
    pruned = prune(folder, keep)
    size = out.stat().st_size
    return {"file": str(out), "bytes": size, "blobs_dir": str(blobs_beside(out)), **written, **blobs, "pruned": pruned}


def prune(folder: Path, keep: int = KEEP_BACKUPS) -> int:
    """Remove all but the newest ``keep`` backups, keeping the full copies those stand on."""
    kept = backups(folder)
    newest = kept[-keep:] if keep > 0 else []
    needed = {folder / _head(p)[4] for p in newest if p.name.endswith(".delta")}
    gone = 0
    for old in kept:
        if old in newest or old in needed:
            continue
        old.unlink()
        Path(str(old) + ".pages").unlink(missing_ok=True)
        shutil.rmtree(blobs_beside(old), ignore_errors=True)
        gone += 1
    return gone


def materialize(source: Path, out: Path) -> None:
    """Rebuild the database a full or delta file stands for into ``out``, checked against its SHA-256."""
    kind, page_size, pages, sha, base, start = _head(source)
    if kind == "D":
        full = source.parent / base
        if not full.is_file():
            raise Refused(f"差异备份 {source} 所依据的完整备份 {full} 不存在 (its full backup is missing)")
        materialize(full, out)
    with out.open("r+b" if kind == "D" else "wb") as dst, source.open("rb") as src:
        src.seek(start)
        unsqueeze = zlib.decompressobj()
        pending = b""
        record = page_size + (_PAGE_NO.size if kind == "D" else 0)
        number = 0
        while True:
            chunk = src.read(1 << 20)
            pending += unsqueeze.decompress(chunk) if chunk else unsqueeze.flush()
            whole = len(pending) - len(pending) % record
            for i in range(0, whole, record):
                if kind == "D":
                    (number,) = _PAGE_NO.unpack_from(pending, i)
                    dst.seek((number - 1) * page_size)
                    dst.write(pending[i + _PAGE_NO.size : i + record])
                else:
                    dst.write(pending[i : i + record])
            pending = pending[whole:]
            if not chunk:
                break
        dst.truncate(pages * page_size)
    check = hashlib.sha256()
    with out.open("rb") as f:
        while block := f.read(1 << 20):
            check.update(block)
    if check.digest() != sha:
        raise Refused(f"备份 {source} 还原后校验不符，文件已损坏 (the rebuilt database does not match its checksum)")


__all__ = ["KEEP_BACKUPS", "backups", "is_rotated", "materialize", "prune", "rotate"]
