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
from collections.abc import Iterable
from pathlib import Path

from protocol.blob import CHUNK_SIZE, is_sha256_hex


class BlobError(ValueError):
    """A blob that cannot be stored: unreadable, too large, or not what its name says."""


def sha256_file(path: Path, *, max_bytes: int) -> tuple[str, int]:
    """(SHA-256 hex, size) of a file, refusing one larger than ``max_bytes`` without reading it all."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            size += len(block)
            if size > max_bytes:
                raise BlobError(f"{path} is larger than the {max_bytes // (1024 * 1024)} MiB cap")
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
                raise BlobError(f"{src} changed while it was being read; try again")
            _durable_write(self.path(sha), data)
        return sha, size

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
