"""The hub's root key and the history of its online keys, kept as files beside `keys.bin`.

- `HUB/keys.bin`: the online keys (signing, sealing), as before. The online signing key signs feeds,
  releases, receipts and enrolment answers; rotating it rewrites this file.
- `HUB/keys/root`: the root key's seed. Only `rotate-key` and `rotate-root` need it, so it can live
  on a USB key at the district's security office: move the file there and pass `--root PATH` to those
  two commands. Everything else (enrolment included) needs only the root's *public* key.
- `HUB/keys/chain.bin`: the root's public key, the roots the hub has had, and the history of signed
  `hub-root` / `hub-keys` documents (protocol/hubkeys.py) that stations follow, in order.
- `HUB/keys/retired_seal.bin`: sealing keys `rotate-key --seal` replaced, kept to open what stations
  sealed to them before they followed (hub/seal_keys.py).

Keys and settings live in the folder, not the database, so a database restored from a backup never
takes the hub back to keys it has retired.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub import seal_keys
from protocol.codec import pack, unpack
from protocol.document import open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.hubkey_docs import KeyBundle
from protocol.hubkeys import KEYS_MAGIC, ROOT_KIND, fingerprint, listed_sign_keys, sign_key_list, sign_root_change
from protocol.keys import (
    key_id,
    load_signing_key,
    load_verify_key,
    private_bytes,
    public_bytes,
    sealing_key_from_seed,
    signing_key_from_seed,
)
from replica.errors import Refused
from replica.keyfile import KeyPair, load_keys, replace_keys

if TYPE_CHECKING:
    from hub.state import HubState

KEYS_DIR = "keys"
ROOT_FILE = "root"
CHAIN_FILE = "chain.bin"
KEY_LIST_DAYS = 365  # a station refuses a list past this; `rotate-key` issues a fresh one
RENEW_WARNING_DAYS = 30  # `hub status` asks for a renewal this long before the list expires
_ROOT_MAGIC = "sanji-hub-root-v1"


@dataclass
class Chain:
    root_pub: bytes
    version: int
    expires_ms: int
    roots: list[bytes] = field(default_factory=list)
    docs: list[bytes] = field(default_factory=list)
    online: bytes = b""  # the signing key the newest list names (what a serving hub must sign with)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.root_pub)


def default_root_path(folder: Path) -> Path:
    return folder / KEYS_DIR / ROOT_FILE


def _write_private(path: Path, data: bytes, *, replace: bool) -> None:
    """Write `data` readable by its owner only, by rename (never half a key file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if not replace and path.exists():
        tmp.unlink()
        raise Refused(f"{path} 已存在，不会覆盖 (already exists; it is not overwritten)")
    os.replace(tmp, path)


def write_root(path: Path, key: Ed25519PrivateKey, *, replace: bool = False) -> None:
    _write_private(path, pack({"kind": _ROOT_MAGIC, "seed": private_bytes(key)}), replace=replace)


def load_root(path: Path) -> Ed25519PrivateKey:
    try:
        raw = unpack(path.read_bytes())
    except FileNotFoundError as exc:
        raise Refused(
            f"找不到根密钥 {path} (no root key there: if it is kept offline, insert its USB key and pass --root PATH)"
        ) from exc
    except (OSError, RemoteProtocolError) as exc:
        raise Refused(f"无法读取根密钥 {path} (cannot read the root key: {exc})") from exc
    if not isinstance(raw, dict) or raw.get("kind") != _ROOT_MAGIC or not isinstance(raw.get("seed"), bytes):
        raise Refused(f"{path} 不是 Sanji 根密钥文件 (not a Sanji root key file)")
    return load_signing_key(raw["seed"])


def load_chain(folder: Path) -> Chain | None:
    path = folder / KEYS_DIR / CHAIN_FILE
    if not path.exists():
        return None
    raw = unpack(path.read_bytes())
    if not isinstance(raw, dict):
        raise Refused(f"{path} 已损坏 (damaged; restore it from a copy of the hub folder)")
    return Chain(
        bytes(raw["root_pub"]),
        int(raw["version"]),
        int(raw["expires_ms"]),  # type: ignore[call-overload]
        list(raw["roots"]),
        list(raw["docs"]),
        bytes(raw.get("online", b"")),
    )  # type: ignore[call-overload]


def save_chain(folder: Path, chain: Chain) -> None:
    _write_private(
        folder / KEYS_DIR / CHAIN_FILE,
        pack(
            {
                "root_pub": chain.root_pub,
                "version": chain.version,
                "expires_ms": chain.expires_ms,
                "roots": chain.roots,
                "docs": chain.docs,
                "online": chain.online,
            }
        ),
        replace=True,
    )


def create(folder: Path, keys: KeyPair, *, hub_id: str, now_ms: int, legacy: bool) -> Chain:
    """A root for a hub that has none, and key list 1 naming its online keys.

    `legacy`: the hub existed before roots did, so its stations pinned only its online key. The
    online key then introduces the root (a `hub-root` document it signs), which those stations follow
    at their next sync; nothing has to be re-enrolled.
    """
    root = signing_key_from_seed(os.urandom(32))
    root_pub = public_bytes(root)
    write_root(default_root_path(folder), root)
    docs = [sign_root_change(keys.sign, root_pub, hub_id=hub_id, seq=1)] if legacy else []
    expires = now_ms + KEY_LIST_DAYS * 86_400_000
    docs.append(
        sign_key_list(
            root, hub_id=hub_id, version=1, sign=keys.sign_pub, seal=keys.seal_pub, issued_ms=now_ms, expires_ms=expires
        )
    )
    chain = Chain(root_pub, 1, expires, [root_pub], docs, keys.sign_pub)
    save_chain(folder, chain)
    return chain


def ensure(hub: HubState) -> Chain:
    """The hub's chain, made on first use for a hub folder from before roots (a migration)."""
    chain = load_chain(hub.folder)
    if chain is None:
        chain = create(hub.folder, hub.keys, hub_id=hub.hub_id, now_ms=hub.clock(), legacy=True)
        return chain
    if chain.online and chain.online != hub.keys.sign_pub:
        # `rotate-key` ran in another process while this one serves: take the new key from keys.bin, so
        # the stations that follow the new list (they ask for it first in every round) can verify us.
        fresh = load_keys(hub.folder)
        if fresh.sign_pub == chain.online:
            hub.keys = fresh
    _resign_stale_releases(hub, chain)
    return chain


# Per open hub, the key its releases were last found signed with: a serving hub answers /v1/keys at
# the start of every station's round and need not read its newest release each time to know.
_CHECKED: weakref.WeakKeyDictionary[HubState, str] = weakref.WeakKeyDictionary()


def _resign_stale_releases(hub: HubState, chain: Chain) -> None:
    """A database restored from a backup taken before a rotation holds releases signed by a key the hub
    no longer has. Its own history says which keys it had: what one of them signed is signed again."""
    if _CHECKED.get(hub) == hub.keys.sign_key_id:
        return  # checked for this key already: releases published since are signed with it
    latest = hub.store.latest_release()
    if latest is None or peek_header(latest[1]).get("signer_key") == hub.keys.sign_key_id or not chain.roots:
        _CHECKED[hub] = hub.keys.sign_key_id
        return
    known = {key_id(k): k for k in listed_sign_keys(chain.docs, hub_id=hub.hub_id, anchor=chain.roots[0])}
    current = hub.keys.sign_key_id
    with hub.store.transaction():
        for version, frame in hub.store.release_frames():
            kid = str(peek_header(frame).get("signer_key", ""))
            if kid == current or kid not in known:
                continue
            hub.store.replace_release_frame(version, _signed_again(hub, frame, version, known[kid]))


def _signed_again(hub: HubState, frame: bytes, version: int, signer_pub: bytes) -> bytes:
    """A release verified with the earlier key that signed it, signed with the current one."""
    pub, kid = load_verify_key(signer_pub), key_id(signer_pub)
    doc = open_document(frame, kind="catalogue", recipient="*", verify_key=lambda s, k: pub if k == kid else None)
    return sign_document(
        "catalogue",
        doc.body,
        signer=hub.hub_id,
        recipient="*",
        signing_key=hub.keys.sign,
        extra_header={"version": version},
    )


def _current_root(hub: HubState, chain: Chain, root_path: Path | None) -> tuple[Ed25519PrivateKey, Path]:
    path = root_path or default_root_path(hub.folder)
    root = load_root(path)
    if public_bytes(root) != chain.root_pub:
        raise Refused(
            f"{path} 不是本枢纽当前的根密钥（当前指纹 {chain.fingerprint}）(this is not the hub's current "
            "root key; pass the right one with --root PATH)"
        )
    return root, path


def _resign_releases(hub: HubState, old: KeyPair, new: KeyPair) -> None:
    """Stations and the hub trust only listed keys, so every release is signed again by the new one
    (same body, same version): a station keeps using the catalogue it holds once it follows."""
    kid = old.sign_key_id
    for version, frame in hub.store.release_frames():
        doc = open_document(
            frame, kind="catalogue", recipient="*", verify_key=lambda s, k: old.sign.public_key() if k == kid else None
        )
        hub.store.replace_release_frame(
            version,
            sign_document(
                "catalogue",
                doc.body,
                signer=hub.hub_id,
                recipient="*",
                signing_key=new.sign,
                extra_header={"version": version},
            ),
        )


def rotate_key(
    hub: HubState, *, root_path: Path | None = None, valid_days: int = KEY_LIST_DAYS, seal: bool = False
) -> dict[str, object]:
    """A new online signing key, listed by the root as key list `version + 1`; the old one is dropped.
    With `seal`, a new sealing key too: the old one is kept in the folder for what stations sealed to it
    before they followed (hub/seal_keys.py).

    A hub serving meanwhile takes the new key at its next `ensure` (the first `/v1/keys` it answers).
    """
    if valid_days < 1:
        raise Refused("有效天数（--valid-days）至少为 1：请改正后重试 (must be at least 1)")
    chain = ensure(hub)
    root, _ = _current_root(hub, chain, root_path)
    old = hub.keys
    new = KeyPair(signing_key_from_seed(os.urandom(32)), sealing_key_from_seed(os.urandom(32)) if seal else old.seal)
    now = hub.clock()
    chain.version += 1
    chain.expires_ms = now + valid_days * 86_400_000
    chain.docs.append(
        sign_key_list(
            root,
            hub_id=hub.hub_id,
            version=chain.version,
            sign=new.sign_pub,
            seal=new.seal_pub,
            issued_ms=now,
            expires_ms=chain.expires_ms,
        )
    )
    # The files are written inside the transaction: if writing them fails, the releases stay signed
    # by the key still on disk.
    with hub.store.transaction():
        _resign_releases(hub, old, new)
        if seal:
            seal_keys.retire(hub.folder, old.seal, now)  # before keys.bin names its successor
        replace_keys(hub.folder, new)
        chain.online = new.sign_pub
    save_chain(hub.folder, chain)
    hub.keys = new
    sealing = f"，新的加密密钥 {new.seal_key_id}" if seal else ""
    _record(hub, f"已换用新的在线签名密钥 {new.sign_key_id}{sealing}（密钥清单版本 {chain.version}）", now)
    out: dict[str, object] = {"key_id": new.sign_key_id, "version": chain.version}
    return {**out, "seal_key_id": new.seal_key_id} if seal else out


def rotate_root(
    hub: HubState, new_root_path: Path, *, root_path: Path | None = None, valid_days: int = KEY_LIST_DAYS
) -> dict[str, object]:
    """Replace the root: the old root names the new one, and the new root lists the online keys.

    `new_root_path` is where the new root lives (made there if the file does not exist yet, e.g. on
    the security office's USB key). When the old root lived in the hub folder, the new one takes its
    place there too, so the hub keeps working as it did.
    """
    chain = ensure(hub)
    old_root, old_path = _current_root(hub, chain, root_path)
    if new_root_path.exists():
        new_root = load_root(new_root_path)
    else:
        new_root = signing_key_from_seed(os.urandom(32))
        write_root(new_root_path, new_root)
    new_pub = public_bytes(new_root)
    if new_pub in chain.roots:
        raise Refused("这把根密钥本枢纽已用过 (this root key was already used by the hub; make a new one)")
    now = hub.clock()
    seq = 1 + sum(1 for d in chain.docs if peek_header(d).get("kind") == ROOT_KIND)
    chain.docs.append(sign_root_change(old_root, new_pub, hub_id=hub.hub_id, seq=seq))
    chain.version += 1
    chain.expires_ms = now + valid_days * 86_400_000
    chain.docs.append(
        sign_key_list(
            new_root,
            hub_id=hub.hub_id,
            version=chain.version,
            sign=hub.keys.sign_pub,
            seal=hub.keys.seal_pub,
            issued_ms=now,
            expires_ms=chain.expires_ms,
        )
    )
    chain.root_pub = new_pub
    chain.roots.append(new_pub)
    chain.online = hub.keys.sign_pub
    default = default_root_path(hub.folder)
    if old_path.resolve() == default.resolve() and new_root_path.resolve() != default.resolve():
        write_root(default, new_root, replace=True)
    save_chain(hub.folder, chain)
    _record(hub, f"已更换根密钥 {key_id(new_pub)}（指纹 {fingerprint(new_pub)}）", now)
    return {"key_id": key_id(new_pub), "version": chain.version, "fingerprint": fingerprint(new_pub)}


def summary(hub: HubState) -> dict[str, object]:
    """What `hub status` shows of the keys: the fingerprint stations compare, and when to renew."""
    from replica.ids import iso_from_ms

    chain = ensure(hub)
    left_ms = chain.expires_ms - hub.clock()
    warning = ""
    if left_ms < RENEW_WARNING_DAYS * 86_400_000:
        warning = (
            f"区局密钥清单将于 {iso_from_ms(chain.expires_ms)} 过期，过期后各站将拒收区局数据；"
            "请尽快用根密钥执行 sanji hub rotate-key (the key list expires soon; renew it with "
            "`sanji hub rotate-key`)"
        )
    return {
        "fingerprint": chain.fingerprint,
        "version": chain.version,
        "key_id": hub.keys.sign_key_id,
        "expires_at": iso_from_ms(chain.expires_ms),
        "warning": warning,
        # The raw public keys (hex) and their key ids, for whoever implements a verifier or pins keys by
        # hand (docs/protocol.md, "Keys and key ids"): the online keys, and the root that lists them.
        "sign_public_key": hub.keys.sign_pub.hex(),
        "sign_key_id": hub.keys.sign_key_id,
        "seal_public_key": hub.keys.seal_pub.hex(),
        "seal_key_id": hub.keys.seal_key_id,
        "root_public_key": chain.root_pub.hex(),
        "root_key_id": key_id(chain.root_pub),
    }


def bundle(hub: HubState, *, with_release: bool = True, after: int = -1) -> dict[str, object]:
    """`key_bundle` in its wire form (the `/v1/keys` answer, a key file's content)."""
    return key_bundle(hub, with_release=with_release, after=after).to_wire()


def key_bundle(hub: HubState, *, with_release: bool = True, after: int = -1) -> KeyBundle:
    """What a station needs to follow the hub's keys: the history, the roots it may start from, and
    the current release (re-signed at each rotation, so a station can keep using its catalogue; an
    enrolment answer leaves it out, its document already carries the release). A station that holds
    list `after` already, the usual case, gets only the version."""
    chain = ensure(hub)
    if after >= chain.version:
        return KeyBundle(hub.hub_id, chain.version, (), ())
    latest = hub.store.latest_release() if with_release else None
    return KeyBundle(hub.hub_id, chain.version, tuple(chain.roots), tuple(chain.docs), latest[1] if latest else None)


def _record(hub: HubState, detail: str, now_ms: int) -> None:
    """Operators see key changes among the alerts: an unexpected one is worth a phone call."""
    with hub.store.transaction():
        hub.store.alert("hub_key", "", detail, now_ms)


def key_file(bundle: dict[str, object]) -> bytes:
    """The key history as a file to carry by hand (`hub export` writes it first)."""
    return KEYS_MAGIC + pack(bundle)
