"""Putting a backup back. The hub must be stopped: a serving hub holds the database open.

After a restore the hub lacks whatever arrived after the backup was taken. Nothing is lost: stations
keep every batch until it is receipted and retained, and answer the hub's gaps by sending them again;
the nightly anti-entropy brings back the rest (see README, "Disaster recovery").

Photos and scans come back from the folder beside the backup file (``FILE.blobs/``, written by
``hub/backup.py``), checked against their names, before the database is replaced. A backup made
before backups carried blobs restores the database alone; ``blobs_missing`` then says how many
blobs the restored hub lists but lacks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hub import backup_rotation
from hub.backup import missing_after_restore, restore_blobs
from hub.service import new_generation
from hub.store import DB_NAME, HubStore
from hub.store.errors import StoreError
from hub.store.pg_store import need_sqlite
from hub.store.sqlite_files import hub_id_of_copy
from replica.blobstore import BlobStore
from replica.errors import Refused

PID_FILE = "hub.pid"


def serving_pid(folder: Path) -> int | None:
    try:
        pid = int((folder / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def restore(folder: Path, source: Path) -> dict[str, object]:
    need_sqlite(folder, "恢复", "pg_restore")
    pid = serving_pid(folder)
    if pid is not None:
        raise Refused(f"{folder} 的区局服务正在运行（进程 {pid}）：请先停止 hub serve 再恢复 (the hub is serving)")
    if not source.is_file():
        raise Refused(f"{source} 不是文件：请核对备份文件的路径 (not a file)")
    if backup_rotation.is_delta(source):
        # A rotated delta: rebuild the database it stands for first, checked against its
        # SHA-256; the photos still come from the folder beside the rotated file.
        rebuilt = folder / (DB_NAME + ".restoring")
        try:
            backup_rotation.materialize(source, rebuilt)
            return _restore(folder, rebuilt, blobs_from=source)
        finally:
            rebuilt.unlink(missing_ok=True)
    return _restore(folder, source, blobs_from=source)


def _restore(folder: Path, source: Path, *, blobs_from: Path) -> dict[str, object]:
    current = HubStore.open(folder)
    hub_id = current.get_meta("hub_id")
    current.close()
    try:
        copied_id = hub_id_of_copy(source)
    except StoreError as exc:
        raise Refused(f"{source} 不是区局的备份文件：请核对备份文件的路径 (not a hub backup: {exc})") from exc
    if copied_id is None or copied_id != hub_id:
        raise Refused(f"{source} 是别的区局的备份，不是 {hub_id} 的：请用本区局的备份文件 (a backup of another hub)")
    # Blobs first: they are only ever added and named by their content, so putting them back cannot
    # harm the hub even if the database copy below fails.
    blobs = BlobStore(folder / "blobs")
    restored_blobs = restore_blobs(blobs_from, blobs)
    target = folder / DB_NAME
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)
    store = HubStore.open(folder)
    with store.transaction():
        store.set_meta("generation", new_generation())
        # The hub is an origin too: its own seqs after the backup point were handed out already and
        # stations hold them, so the restored hub continues in a new epoch, like a restored station.
        store.set_meta("epoch", int(str(store.get_meta("epoch", 1))) + 1)
        store.set_meta("seq", 0)
    missing = missing_after_restore(store, blobs)
    store.close()
    return {
        "restored": True,
        "from": str(blobs_from),
        "blobs": restored_blobs["blobs"],
        "blobs_damaged": restored_blobs["blobs_damaged"],
        "blobs_missing": missing,
    }
