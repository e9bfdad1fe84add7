"""The hub's sealing keys: the current one, and those a rotation retired (issue 16).

Stations seal to the hub's X25519 key twice over: every batch body, and each change's personal
values (``hub_seal``, ``protocol/hub_seal.py``), which a station seals once, when it writes the
change, and may send weeks later (a village offline for a month, a USB stick found in a drawer).
``sanji hub rotate-key --seal`` gives the hub a new sealing key, and stations take it at their next
sync (the key list names it); what they sealed before stays sealed to the old one. So the old private
half is kept, in ``HUB/keys/retired_seal.bin`` (0600): in the folder beside ``keys.bin``, never in
the database, so whoever reads the database, or restores an old backup of it, holds no private key.

What is sealed names the key it was sealed to (its key id). :func:`sealing_keys` lists the keys to try
in order, the current one first and then the retired ones, newest first; a seal opens with the one
its key id names, and one sealed to a key the hub never had does not open (held, with its reason).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.codec import pack, unpack
from protocol.errors import RemoteProtocolError
from protocol.keys import key_id, load_sealing_key, private_bytes, public_bytes
from replica.errors import Refused

if TYPE_CHECKING:
    from hub.state import HubState

RETIRED_FILE = Path("keys") / "retired_seal.bin"  # beside hub/keyring.py's root and chain
_MAGIC = "sanji-hub-retired-seal-v1"

# Per file: its (mtime, size, inode) when last read, and the keys it held. An ingest asks for every
# frame; one stat tells whether another process (`rotate-key` while the hub serves) retired a key.
_CACHE: dict[Path, tuple[tuple[int, int, int], list[X25519PrivateKey]]] = {}

Keys = list[tuple[str, X25519PrivateKey]]


def _read_file(path: Path) -> tuple[list[bytes], dict[str, int]]:
    """The seeds, newest first, and when each was retired by key id (files written before that was
    recorded have no dates: ``sanji hub prune-seal-keys --before`` then keeps them, saying why)."""
    try:
        raw = unpack(path.read_bytes())
    except FileNotFoundError:
        return [], {}
    except (OSError, RemoteProtocolError) as exc:
        raise Refused(f"无法读取已退役的加密密钥 {path} (cannot read the retired sealing keys: {exc})") from exc
    if not isinstance(raw, dict) or raw.get("kind") != _MAGIC or not isinstance(raw.get("keys"), list):
        raise Refused(f"{path} 不是 Sanji 已退役密钥文件，请从区局文件夹的备份中恢复 (not a retired-keys file)")
    dates = raw.get("retired_ms")
    when = {str(k): v for k, v in dates.items() if type(v) is int} if isinstance(dates, dict) else {}
    return [bytes(k) for k in raw["keys"] if isinstance(k, bytes)], when


def _read(path: Path) -> list[bytes]:
    return _read_file(path)[0]


def _write(path: Path, seeds: list[bytes], when: dict[str, int]) -> None:
    """Owner-only, by rename: a crash leaves the whole old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pack({"kind": _MAGIC, "keys": seeds, "retired_ms": when}))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _kid(seed: bytes) -> str:
    return key_id(public_bytes(load_sealing_key(seed)))


def retire(folder: Path, old: X25519PrivateKey, now_ms: int | None = None) -> None:
    """Keep ``old`` for opening what was sealed to it. Call before ``keys.bin`` names its successor,
    so no moment exists in which neither file holds it. ``now_ms``: when, for pruning by date."""
    path = folder / RETIRED_FILE
    seeds, when = _read_file(path)
    seed = private_bytes(old)
    if seed not in seeds:
        if now_ms is not None:
            when = {**when, _kid(seed): now_ms}
        _write(path, [seed, *seeds], when)  # newest first


def retired_dated(folder: Path) -> list[tuple[str, int | None]]:
    """(key id, when retired or None if not recorded) of each retired sealing key, newest first."""
    seeds, when = _read_file(folder / RETIRED_FILE)
    return [(kid, when.get(kid)) for kid in map(_kid, seeds)]


def remove(folder: Path, kids: set[str]) -> list[str]:
    """Delete the retired keys named by ``kids`` from the folder's file (``hub/seal_prune.py`` decides
    which may go); returns the ids removed. The file is rewritten whole, by rename."""
    path = folder / RETIRED_FILE
    seeds, when = _read_file(path)
    keep = [s for s in seeds if _kid(s) not in kids]
    gone = [_kid(s) for s in seeds if _kid(s) in kids]
    if gone:
        _write(path, keep, {k: v for k, v in when.items() if k not in kids})
    return gone


def retired(folder: Path) -> list[X25519PrivateKey]:
    """The retired sealing keys, newest first (read again only when the file changed)."""
    path = folder / RETIRED_FILE
    try:
        st = os.stat(path)
    except FileNotFoundError:
        _CACHE.pop(path, None)
        return []
    mark = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _CACHE.get(path)
    if cached is None or cached[0] != mark:
        cached = (mark, [load_sealing_key(seed) for seed in _read(path)])
        _CACHE[path] = cached
    return cached[1]


def sealing_keys(hub: HubState) -> Keys:
    """(key id, private key) to try, in order: the current key, then the retired ones."""
    current = hub.keys.seal_key_id
    keys: Keys = [(current, hub.keys.seal)]
    for key in retired(hub.folder):
        kid = key_id(public_bytes(key))
        if kid != current:
            keys.append((kid, key))
    return keys


def unseal_key(hub: HubState) -> Callable[[str], X25519PrivateKey | None]:
    """For ``open_payload``: the private key a frame's ``recipient_key`` names, or None."""
    keys = dict(reversed(sealing_keys(hub)))  # the first listed wins a (never expected) repeated id

    def unseal(kid: str) -> X25519PrivateKey | None:
        return keys.get(kid)

    return unseal
