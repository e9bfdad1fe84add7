"""A backup of the hub: the database, and beside it the photos and scans its reports name.

``sanji hub backup --out FILE`` writes a consistent copy of ``hub.db`` to FILE with SQLite's online
backup API, then every complete blob of ``HUB/blobs/`` to the folder ``FILE.blobs/``, in the same
``ab/cdef…`` layout. The nightly job's rotated backups (``hub/backup_rotation.py``: a weekly full copy
``HUB/backups/hub-….db`` and nightly deltas ``hub-….delta``) carry their photos the same way. Uploads still in
progress are left out: a station sends again whatever the hub does not hold whole.

The database is copied first. Blobs are only ever added, so every blob the copied index names is on
disk by the time the folder is copied: the pair is consistent even while the hub serves. A blob is
copied only once its bytes hash to its name (a damaged file is reported, never backed up); a file the
folder already holds under that name and size is kept, so backing up to the same place again copies
only what is new. A rotated backup hard-links the files it shares with the previous one, so seven
nightly copies cost the disk about one copy of the photos.

``sanji hub restore`` puts the blobs back with :func:`restore_blobs`, before the database.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hub.store.pg_store import need_sqlite
from replica.blobstore import BlobStore

if TYPE_CHECKING:
    from hub.service import Hub
    from hub.store import HubStore

log = logging.getLogger("sanji.hub.backup")
BLOBS_SUFFIX = ".blobs"


def blobs_beside(db_file: Path) -> Path:
    """The folder that holds a backup's blobs: ``hub-backup.db`` → ``hub-backup.db.blobs``."""
    return db_file.with_name(db_file.name + BLOBS_SUFFIX)


def _link(src: Path, dst: Path) -> bool:
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.unlink(missing_ok=True)
        os.link(src, dst)
    except OSError:  # another file system, or one without hard links: copy instead
        return False
    return True


def copy_blobs(source: BlobStore, dest: Path, *, link_from: Path | None = None) -> dict[str, object]:
    """Copy every complete blob of ``source`` into the folder ``dest`` (made even when there are none,
    so a restore can tell a backup without photos from one made before backups carried them)."""
    dest.mkdir(parents=True, exist_ok=True)
    target = BlobStore(dest)
    earlier = BlobStore(link_from) if link_from is not None and link_from != dest else None
    count = size = 0
    damaged: list[str] = []
    for sha in source.shas():
        n = source.size(sha)
        kept = target.has(sha) and target.size(sha) == n
        linked = (
            not kept
            and earlier is not None
            and earlier.has(sha)
            and earlier.size(sha) == n
            and _link(earlier.path(sha), target.path(sha))
        )
        if not (kept or linked):
            data = source.read(sha)
            if hashlib.sha256(data).hexdigest() != sha:
                log.error("blob %s in %s does not hash to its name; not backed up", sha, source.root)
                damaged.append(sha)
                continue
            target.delete(sha)  # a file of the wrong size under this name is not this blob
            target.put(data)
        count += 1
        size += n
    return {"blobs": count, "blob_bytes": size, "blobs_damaged": damaged}


def backup(hub: Hub, out: Path, *, link_from: Path | None = None) -> dict[str, object]:
    """A consistent copy of the hub: ``out`` (the database) and ``out.blobs/`` (its blobs)."""
    need_sqlite(hub.folder, "备份", "pg_dump（或 pg_basebackup）")
    size = hub.store.backup_into(out)
    blobs = copy_blobs(BlobStore(hub.folder / "blobs"), blobs_beside(out), link_from=link_from)
    return {"file": str(out), "bytes": size, "blobs_dir": str(blobs_beside(out)), **blobs}


def restore_blobs(source_db: Path, dest: BlobStore) -> dict[str, object]:
    """Put back the blobs kept beside a backup file. Each is checked against its name first; one the
    hub already holds intact is left alone, so a restore onto a surviving blob folder copies little.
    A backup made before backups carried blobs has no folder: nothing is copied."""
    folder = blobs_beside(source_db)
    if not folder.is_dir():
        return {"blobs": 0, "blobs_damaged": [], "blobs_dir": None}
    source = BlobStore(folder)
    count = 0
    damaged: list[str] = []
    for sha in source.shas():
        if dest.has(sha) and dest.verify(sha):
            count += 1
            continue
        data = source.read(sha)
        if hashlib.sha256(data).hexdigest() != sha:
            log.error("blob %s in backup %s does not hash to its name; not restored", sha, folder)
            damaged.append(sha)
            continue
        dest.delete(sha)
        dest.put(data)
        count += 1
    return {"blobs": count, "blobs_damaged": damaged, "blobs_dir": str(folder)}


def missing_after_restore(hub_store: HubStore, store: BlobStore) -> int:
    """Blobs the restored index lists as held whose files are not in the hub's blob folder (a backup
    from before the hub kept blobs has an empty index once the store's migrations have run)."""
    return sum(1 for sha in hub_store.filed_blobs() if not store.has(sha))
