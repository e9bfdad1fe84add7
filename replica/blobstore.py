"""Content-addressed files: photos and scans kept beside SQLite, never inside it.

A blob lives at ``ROOT/ab/cdef…`` where ``abcdef…`` is the SHA-256 of its bytes, so the same photo
taken into two reports is stored once, and a file whose bytes do not hash to its name is recognisably
damaged. Blobs are written to a temporary file in the same folder, flushed and renamed, so a power cut
leaves either the whole blob or nothing under its name.

Chunks of an upload in progress (hub side) wait under ``ROOT/partial/<sha256>/<index>``; when all are
in, :meth:`BlobStore.assemble` joins them, checks the whole against its name and only then files it.
Names are checked before they become paths, so a request cannot reach outside the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from protocol.blob import CHUNK_SIZE, is_sha256_hex
from protocol.errors import SanjiError


# Also a ValueError: callers wrote `except ValueError` for it before it joined SanjiError.
class BlobError(SanjiError, ValueError):
    """A blob that cannot be stored: unreadable, too large, or not what its name says."""

    default_code = "invalid_blob"


def sha256_file(path: Path, *, max_bytes: int) -> tuple[str, int]:
    """(SHA-256 hex, size) of a file, refusing one larger than ``max_bytes`` without reading it all."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            size += len(block)
            if size > max_bytes:
                raise BlobError(f"{path} 超过 {max_bytes // (1024 * 1024)} MiB 的上限 (larger than the cap)")
            h.update(block)
    return h.hexdigest(), size


def _durable_write(target: Path, data: bytes | Iterable[bytes]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        for part in [data] if isinstance(data, bytes) else data:
            fh.write(part)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


@dataclass(frozen=True)
class PartialUpload:
    """An upload in progress: its chunks on disk, how many bytes they hold, and when one last arrived."""

    sha256: str
    chunks: int
    bytes: int
    last_ms: int  # newest modification time of the folder or any file in it, in ms since the epoch


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha: str) -> Path:
        if not is_sha256_hex(sha):
            raise BlobError(f"{sha!r} is not a SHA-256 content address")
        return self.root / sha[:2] / sha[2:]

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def size(self, sha: str) -> int:
        return self.path(sha).stat().st_size

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its SHA-256. Storing the same bytes again writes nothing."""
        sha = hashlib.sha256(data).hexdigest()
        if not self.has(sha):
            _durable_write(self.path(sha), data)
        return sha

    def put_file(self, src: Path, *, max_bytes: int) -> tuple[str, int]:
        """Copy a file in (hash first, so an oversize file is refused before anything is written)."""
        sha, size = sha256_file(src, max_bytes=max_bytes)
        if not self.has(sha):
            data = src.read_bytes()
            if hashlib.sha256(data).hexdigest() != sha:
                raise BlobError(f"{src} 在读取时被改动了：请重试 (changed while it was being read)")
            _durable_write(self.path(sha), data)
        return sha, size

    def shas(self) -> Iterator[str]:
        """Every complete blob in the store (never an upload in progress or a temporary file)."""
        if not self.root.is_dir():
            return
        for fan in sorted(self.root.iterdir()):
            if len(fan.name) != 2 or not fan.is_dir():
                continue
            for f in sorted(fan.iterdir()):
                sha = fan.name + f.name
                if is_sha256_hex(sha) and f.is_file():
                    yield sha

    def read(self, sha: str) -> bytes:
        return self.path(sha).read_bytes()

    def read_chunk(self, sha: str, index: int, chunk_size: int = CHUNK_SIZE) -> bytes:
        with self.path(sha).open("rb") as fh:
            fh.seek(index * chunk_size)
            return fh.read(chunk_size)

    def verify(self, sha: str) -> bool:
        """True when the stored file still hashes to its name."""
        try:
            return sha256_file(self.path(sha), max_bytes=1 << 40)[0] == sha
        except OSError:
            return False

    def delete(self, sha: str) -> int:
        """Remove a blob; returns the bytes freed (0 if it was not there)."""
        path = self.path(sha)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only succeeds when the fan-out folder is empty
        return size

    # -- uploads in progress ----------------------------------------------------------------------

    def _partial(self, sha: str) -> Path:
        self.path(sha)  # validates the name
        return self.root / "partial" / sha

    def held_chunks(self, sha: str) -> list[int]:
        folder = self._partial(sha)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    def put_chunk(self, sha: str, index: int, data: bytes) -> None:
        _durable_write(self._partial(sha) / f"{index:06d}", data)

    def drop_partial(self, sha: str) -> None:
        shutil.rmtree(self._partial(sha), ignore_errors=True)

    def partials(self) -> list[PartialUpload]:
        """Every upload in progress, with the time its folder last changed (a chunk arriving renames a
        file into it), so an abandoned one can be told from one still being resumed."""
        base = self.root / "partial"
        if not base.is_dir():
            return []
        out = []
        for folder in sorted(base.iterdir()):
            if not is_sha256_hex(folder.name) or not folder.is_dir():
                continue
            try:
                newest, size, chunks = folder.stat().st_mtime_ns, 0, 0
                for part in folder.iterdir():
                    st = part.stat()
                    newest, size = max(newest, st.st_mtime_ns), size + st.st_size
                    chunks += part.name.isdigit()
            except FileNotFoundError:  # dropped or completed meanwhile
                continue
            out.append(PartialUpload(folder.name, chunks, size, newest // 1_000_000))
        return out

    def assemble(self, sha: str, count: int) -> bool:
        """Join chunks 0..count-1 and file the blob if it hashes to ``sha``.

        A mismatch deletes the chunks (they cannot be trusted piecemeal either) and returns False.
        """
        folder = self._partial(sha)
        parts = [folder / f"{i:06d}" for i in range(count)]
        h = hashlib.sha256()
        for part in parts:
            h.update(part.read_bytes())
        if h.hexdigest() != sha:
            self.drop_partial(sha)
            return False
        if not self.has(sha):
            _durable_write(self.path(sha), (p.read_bytes() for p in parts))
        self.drop_partial(sha)
        return True
