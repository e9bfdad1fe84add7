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
