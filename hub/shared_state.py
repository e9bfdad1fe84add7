"""What one hub process keeps in memory and must read again because other processes share its folder.

Several processes write one hub: the workers of `hub serve --workers N`, the group committer's
connection beside the loop's in each of them, and the operator's CLI (`hub enroll`, `hub revoke`,
`hub rotate-key`) while the hub serves. Everything they must agree on is in the store (seq and HLC,
releases, tokens, sessions, lock-outs, chains and cursors), read inside the transaction that uses it.
Two things a process keeps for speed are checked here instead, cheaply, before each use:

- who is who (``HubState.tiers``: tier per station, and so each station's authority in a merge),
  forgotten when another connection has committed since this one last looked (SQLite's
  ``data_version`` moves only then), as an enrolment or a revocation elsewhere changes it;
- the hub's online signing key: after `hub rotate-key` (or a rotation through another process) the
  key list in ``keys/chain.bin`` names a new key, written to ``keys.bin`` before the list, and a
  process still signing with the old one would sign feeds and receipts the stations no longer
  trust. One ``stat`` of the list per check; the files are read only when it changed.

``hub/app.py`` checks the loop's hub before every request; ``hub/ingest.py`` checks the hub a frame is
taken in through (the committer's) before every frame.
"""

from __future__ import annotations

import os
import weakref

from hub.keyring import CHAIN_FILE, KEYS_DIR, load_chain
from hub.state import HubState
from replica.keyfile import load_keys

_DATA_VERSION: weakref.WeakKeyDictionary[HubState, int] = weakref.WeakKeyDictionary()
_CHAIN_SEEN: weakref.WeakKeyDictionary[HubState, tuple[int, int, int]] = weakref.WeakKeyDictionary()


def catch_up(hub: HubState) -> None:
    """Forget or reload what another process changed underneath ``hub`` since the last call."""
    forget_tiers_if_moved(hub)
    follow_key_rotation(hub)


def forget_tiers_if_moved(hub: HubState) -> None:
    version = hub.store.data_version()
    if _DATA_VERSION.get(hub) != version:
        hub.forget_tiers()
        _DATA_VERSION[hub] = version


def follow_key_rotation(hub: HubState) -> None:
    """Take the online key the key list names, if another process rotated it (no database work: the
    committer's hub is checked from its own thread, in the middle of a group)."""
    try:
        st = os.stat(hub.folder / KEYS_DIR / CHAIN_FILE)
    except OSError:
        return  # a hub from before key lists: nothing to follow
    mark = (st.st_mtime_ns, st.st_size, st.st_ino)
    if _CHAIN_SEEN.get(hub) == mark:
        return
    chain = load_chain(hub.folder)
    if chain is not None and chain.online and chain.online != hub.keys.sign_pub:
        fresh = load_keys(hub.folder)
        if fresh.sign_pub != chain.online:
            return  # the list is ahead of keys.bin (a rotation mid-way): look again next time
        hub.keys = fresh
    _CHAIN_SEEN[hub] = mark
