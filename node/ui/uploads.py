"""The files of a report form: uploaded photos, a scanned signature or the pad's PNG, written to a
temporary folder for ``node.inspection.report``; and the ones kept after a refusal.

Kept files wait in ``DIR/ui-staging`` (content-addressed like the blob store, so a name in a hidden
field can only ever name a file there), are deleted once a report uses them, and are swept after two
days: photos of a citizen's home are not left lying about when a report is abandoned.
"""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from node import blobs
from protocol.blob import MAX_BLOB_BYTES, is_sha256_hex
from replica.blobstore import BlobStore
from replica.errors import Refused

STAGING = "ui-staging"
UPLOAD_PREFIX = ".upload-"  # the temporary folder of one submission, beside it
STAGING_MAX_AGE_S = 2 * 86400
PNG_URL = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def save(upload: Any, path: Path) -> None:
    """Copy an uploaded part to ``path``, stopping just past the cap (the command then refuses it)."""
    with path.open("wb") as out:
        left = MAX_BLOB_BYTES + 1
        while left > 0 and (block := upload.file.read(min(left, 1024 * 1024))):
            out.write(block)
            left -= len(block)


def display_name(upload: Any, n: int) -> str:
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "", str(getattr(upload, "filename", "") or ""))[:80]
    return f"「{name}」" if name else f"第 {n} 张照片"


def signature(form: Any, tmp: Path, names: dict[str, str], staging: BlobStore) -> Path | None:
    drawn = str(form.get("signature_png", ""))
    if drawn:
        if not drawn.startswith(PNG_URL) or len(drawn) > MAX_BLOB_BYTES * 4 // 3 + len(PNG_URL) + 4:
            raise Refused("签名图像无法读取（不是 PNG 图像或过大），请清除后重新签名")
        try:
            data = base64.b64decode(drawn[len(PNG_URL) :], validate=True)
        except (binascii.Error, ValueError):
            raise Refused("签名图像无法读取，请清除后重新签名") from None
        if not data.startswith(PNG_MAGIC):
            raise Refused("签名图像不是 PNG 图像，请清除后重新签名")
        path = tmp / "signature.png"
        path.write_bytes(data)
        names[str(path)] = "手写签名"
        return path
    scan = form.get("signature_file")
    if isinstance(scan, web.FileField) and scan.filename:
        path = tmp / "signature-scan"
        save(scan, path)
        names[str(path)] = f"签名扫描件{display_name(scan, 0)}"
        return path
    kept = str(form.get("kept_signature", ""))
    if is_sha256_hex(kept) and staging.has(kept):
        return staging.path(kept)
    return None


def photos(form: Any, tmp: Path, names: dict[str, str], staging: BlobStore) -> list[Path]:
    paths = [
        staging.path(s)
        for s in dict.fromkeys(str(x) for x in form.getall("kept_photo", []))
        if is_sha256_hex(s) and staging.has(s)
    ]
    new = [u for u in form.getall("photos", []) if isinstance(u, web.FileField) and u.filename]
    for i, upload in enumerate(new, 1):
        path = tmp / f"photo-{i:03d}"
        save(upload, path)
        names[str(path)] = display_name(upload, i)
        paths.append(path)
    return paths


def keep(staging: BlobStore, paths: list[Path]) -> list[dict[str, object]]:
    """Stage the files that were fine, so the re-shown form still holds them."""
    kept = []
    for path in paths:
        try:
            sha, size = blobs.check_file(path, "上传")
            staging.put_file(path, max_bytes=MAX_BLOB_BYTES)
        except (Refused, OSError, ValueError):
            continue  # too big, empty or unreadable: that one has to be taken again
        kept.append({"sha": sha, "size": size})
    return kept


def sweep(staging: BlobStore) -> None:
    """Delete kept files older than two days, and upload folders a crash left behind."""
    old = time.time() - STAGING_MAX_AGE_S
    for path in staging.root.glob("*/*"):
        if path.is_file() and path.stat().st_mtime < old:
            path.unlink(missing_ok=True)
    for folder in staging.root.parent.glob(f"{UPLOAD_PREFIX}*"):
        if folder.is_dir() and folder.stat().st_mtime < old:
            shutil.rmtree(folder, ignore_errors=True)
