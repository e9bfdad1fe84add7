"""Files carried by hand (a USB stick) are looked at before they are read, and read without trust.

A stick passes through village PCs that nobody administers. Before a single byte of a file is read,
the entry must be a regular file, not a symbolic link (a link could point the importer at its own keys
or database, or at a device or pipe that never ends), and no larger than the largest frame the
protocol accepts (anything bigger would be refused anyway, but only after it had been read into
memory). Refusals are returned with their reason, never raised past the caller, so one bad entry never
costs the rest of the stick.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.limits import FILE_MAX_BYTES, mib

# Every file Sanji writes for carrying (batch, blob, feed page, claim) is one frame or smaller, and no
# receiver accepts a frame over this: a larger file can only be damaged or hostile.
MAX_FILE_BYTES = FILE_MAX_BYTES
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Refusal:
    """One entry that was not read, and why; ``code`` is stable, ``reason`` is for the operator."""

    path: Path
    code: str
    reason: str

    def row(self) -> dict[str, str]:
        """The shape of one entry of an import's ``rejected`` list (CONTRACT.md)."""
        return {"file": str(self.path), "reason": f"{self.code}: {self.reason}"}


class CarriedFileRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


def _symlink(path: Path) -> Refusal:
    return Refusal(
        path,
        "symlink",
        "是符号链接，未跟随也未读取 (symbolic link, not followed)；"
        "请把链接指向的文件本身复制到U盘或直接指定其真实路径后再导入",
    )


def _not_a_file(path: Path) -> Refusal:
    return Refusal(
        path, "not_a_file", "不是普通文件（设备、管道或套接字），未读取 (not a regular file)；U盘上只应放站点导出的文件"
    )


def _too_large(path: Path, size: int, limit: int) -> Refusal:
    return Refusal(
        path,
        "too_large",
        f"文件有 {mib(size)}，超过协议允许的最大批次 {mib(limit)}，未读取 "
        "(larger than the largest batch frame)；请在站点重新导出后再导入",
    )


def collect(paths: list[Path]) -> tuple[list[Path], list[Refusal]]:
    """The regular files named by ``paths`` or found in folders among them, and the entries refused.

    Nothing is followed: a symbolic link, whether named on the command line or met inside a folder, is
    refused and not looked through. A path that does not exist raises ``FileNotFoundError`` (a typo
    on the command line, before anything is imported)."""
    files: list[Path] = []
    refused: list[Refusal] = []
    for top in paths:
        mode = os.lstat(top).st_mode
        if stat.S_ISLNK(mode):
            refused.append(_symlink(top))
        elif stat.S_ISREG(mode):
            files.append(top)
        elif stat.S_ISDIR(mode):
            _walk(top, files, refused)
        else:
            refused.append(_not_a_file(top))
    return files, refused


def _walk(root: Path, files: list[Path], refused: list[Refusal]) -> None:
    # A stack, not recursion: a stick can nest folders deeper than Python's recursion limit.
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            refused.append(
                Refusal(
                    folder,
                    "unreadable",
                    f"无法列出文件夹：{exc.strerror} (folder unreadable)；请检查U盘是否插好、文件夹权限是否允许读取",
                )
            )
            continue
        for entry in listed:
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    refused.append(_symlink(path))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    files.append(path)
                else:
                    refused.append(_not_a_file(path))
            except OSError as exc:
                refused.append(Refusal(path, "unreadable", f"无法读取：{exc.strerror} (unreadable)"))


def read(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of one carried file, or ``CarriedFileRefused`` without reading any of them.

    The file is opened with ``O_NOFOLLOW`` and checked on the open descriptor, so swapping it for a
    link or a bigger file after :func:`collect` looked at it gains nothing."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CarriedFileRefused(_symlink(path)) from None
        raise CarriedFileRefused(
            Refusal(
                path, "unreadable", f"无法打开：{exc.strerror} (unreadable)；请检查U盘是否插好、文件权限是否允许读取"
            )
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CarriedFileRefused(_not_a_file(path))
        if info.st_size > max_bytes:
            raise CarriedFileRefused(_too_large(path, info.st_size, max_bytes))
        data = bytearray()
        # One byte past the limit is how a file that grew after fstat is told apart from one that fits.
        while len(data) <= max_bytes:
            chunk = os.read(fd, min(_READ_CHUNK, max_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) > max_bytes:
            raise CarriedFileRefused(_too_large(path, len(data), max_bytes))
        return bytes(data)
    finally:
        os.close(fd)


__all__ = ["MAX_FILE_BYTES", "CarriedFileRefused", "Refusal", "collect", "read"]


# Files one side writes for the other, told apart by their first bytes: the hub writes enrolment
# (SJE2) and key (SJK1) files, a station its claim (SJC1); everything else is a frame (SJF1).
_HUB_MADE = (b"SJE2", b"SJK1")
_STATION_MADE = (b"SJC1",)


def going_the_other_way(data: bytes, *, hub_id: str, at_hub: bool) -> bool:
    """Whether a carried file is addressed away from this side: one of its own exports, or another
    station's for the hub. One stick carries both directions (the README's own example does), so such
    files are skipped and counted, not recorded as rejections that look like forgery.

    Judged from the file's outside, unauthenticated, which is enough: a file skipped here is one this
    side would never apply (it is addressed to someone else), and everything else is still verified."""
    if data.startswith(_HUB_MADE):
        return at_hub
    if data.startswith(_STATION_MADE):
        return not at_hub
    try:
        recipient = peek_header(data).get("recipient")
    except RemoteProtocolError:
        return False  # not a frame: the importer refuses it with its reason
    return recipient != hub_id if at_hub else recipient == hub_id
