"""What a station trusts of the hub's keys, and how it follows the hub's rotations.

A station pins the hub's root (`hub_root_pub`) at enrolment and the online keys of the newest key list
the root signed (`hub_sign_pub`, `hub_seal_pub`, `hub_keys_version`, `hub_keys_expires`). Everything
that comes down is checked against `hub_sign_pub` alone (`Station.hub_key`), so a key the root has
replaced is refused from the moment the station follows the list that replaced it.

Following (:func:`adopt`) walks the hub's key history from the pinned root in order
(protocol/hubkeys.py `follow`), so a station that missed several rotations, even for months, takes
each one in turn. A station enrolled before roots existed pinned only the online key: the hub's
history starts, for it, with that key naming the root, and the station pins the root from there.

The history arrives by HTTP (`GET /v1/keys`, asked at the start of every sync round) or on a USB
stick (`hub export` writes `…_keys_vNNNN.sjk`, which `node import` reads before the pages it signs).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node import hub_answer
from node.station import Station
from protocol.codec import unpack
from protocol.errors import RemoteProtocolError
from protocol.frame import verify_frame
from protocol.hubkey_docs import KeyBundle
from protocol.hubkeys import KEYS_MAGIC, KeyChainError, KeyList, check_current, fingerprint, follow, listed_sign_keys
from protocol.keys import key_id, load_verify_key
from protocol.limits import RESPONSE_MAX_BYTES
from replica import carried_files
from replica.errors import Refused

ANSWER_MAX_BYTES = RESPONSE_MAX_BYTES  # the shared cap (protocol/limits.py): the history is small, a release is not


def pinned_fingerprint(st: Station) -> str:
    root = st.meta.bytes("hub_root_pub")
    return fingerprint(root) if root else ""


def pin(st: Station, keys: KeyList) -> None:
    """Trust `keys` (already verified to chain to our root) from now on. Call inside a transaction."""
    st.meta.set("hub_root_pub", keys.root)
    st.meta.set("hub_sign_pub", keys.sign)
    st.meta.set("hub_seal_pub", keys.seal)
    st.meta.set("hub_seal_key_id", key_id(keys.seal))
    st.meta.set("hub_keys_version", keys.version)
    st.meta.set("hub_keys_expires", keys.expires_ms)


def check(st: Station) -> None:
    """Refuse to take anything from the hub while the key list we hold is past its expiry."""
    expires = st.meta.int("hub_keys_expires")
    if not expires:
        return  # enrolled before key lists existed and not yet followed: the pinned key still stands
    root = st.meta.bytes("hub_root_pub")
    current = KeyList(
        root, st.meta.int("hub_keys_version"), st.meta.bytes("hub_sign_pub"), st.meta.bytes("hub_seal_pub"), 0, expires
    )
    try:
        check_current(current, st.clock())
    except KeyChainError as exc:
        raise Refused(str(exc), code="keys_expired") from exc


def key_history(bundle: object) -> KeyBundle:
    try:
        return KeyBundle.from_wire(bundle)
    except RemoteProtocolError as exc:
        raise Refused(
            f"区局密钥文件格式不对 (the hub's key history is malformed: {exc}; ask the district for a new export)"
        ) from exc


# The refusal of a key history that does not verify from the pinned root (as against a catalogue
# release in it that this station cannot take): only that one says the history was altered on the way.
KEY_CHAIN_REFUSED = "key_chain_refused"


def adopt(st: Station, bundle: object) -> dict[str, object]:
    """Follow the hub's key history (a `/v1/keys` answer or a `.sjk` file) from the root we pinned."""
    history = bundle if isinstance(bundle, KeyBundle) else key_history(bundle)
    anchor = st.meta.bytes("hub_root_pub") or st.meta.bytes("hub_sign_pub")
    version = st.meta.int("hub_keys_version")
    try:
        root, keys = follow(history.docs, hub_id=st.hub_id, anchor=anchor, version=version)
        if keys is not None:
            check_current(keys, st.clock())
    except RemoteProtocolError as exc:
        raise Refused(
            f"区局密钥链无法核验，未采用 (the hub's key history does not verify from the root this "
            f"station pinned: {exc}; call the district before syncing again)",
            code=KEY_CHAIN_REFUSED,
        ) from exc
    with st.transaction():
        if keys is not None:
            pin(st, keys)
        elif root != anchor:
            st.meta.set("hub_root_pub", root)
        if history.release is not None and not _older(history, version):
            _adopt_release(st, history.release)
    return {
        "version": st.meta.int("hub_keys_version"),
        "key_id": key_id(st.meta.bytes("hub_sign_pub")),
        "followed": keys is not None,
        "fingerprint": pinned_fingerprint(st),
    }


def _older(history: KeyBundle, version: int) -> bool:
    """A history older than the list this station holds (a relay's kept copy, an old stick's key file)
    has nothing for it: its release was signed by a key this station has since followed past, so taking
    it could only be refused ("no trusted key"). The release reaches it again in the feed, signed anew."""
    return 0 < history.version < version


def _adopt_release(st: Station, frame: bytes) -> None:
    """The hub signs its releases again when it rotates its key: keep the copy our keys now verify."""
    version, outcome = st.store_catalogue(frame)
    if outcome == "unchanged":
        st.conn.execute("UPDATE catalogues SET frame=? WHERE version=?", (frame, version))


def signed_before_a_rotation(st: Station, doc: bytes, history: bytes | None) -> bool:
    """Whether ``doc``, which the pinned key does not verify, was signed for this station by one of the
    hub's earlier online keys, as named by ``history`` (a key history as handed over, checked here from
    the pinned root). Such a document is the hub's, from before a rotation this station has followed
    since: still refused (a replaced key vouches for nothing new), but no sign that whoever carried
    it altered it. A relay holding the hub's answers across a rotation is not to be blamed for them."""
    if not history:
        return False
    try:
        docs = key_history(unpack(history)).docs
        keys = listed_sign_keys(docs, hub_id=st.hub_id, anchor=st.meta.bytes("hub_root_pub"))
    except (Refused, RemoteProtocolError):
        return False
    current = st.meta.bytes("hub_sign_pub")
    for pub in keys:
        if pub == current:
            continue
        try:
            verify_frame(doc, recipient=st.code, verify_key=lambda who, k, p=pub: _listed(st, who, k, p))
        except RemoteProtocolError:
            continue
        return True
    return False


def _listed(st: Station, signer: str, key: str, pub: bytes) -> Ed25519PublicKey | None:
    return load_verify_key(pub) if signer == st.hub_id and key == key_id(pub) else None


async def read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, refused (unread past the cap) when it is larger than `cap`: every node read of a hub
    answer goes through node/hub_answer.py, one reader with one wording."""
    return await hub_answer.read_body(resp, cap=cap)


def import_key_files(st: Station, files: list[Path]) -> tuple[int, list[dict[str, str]], list[Path]]:
    """Take the key files among `files` first, since the pages after them may be signed by a key only
    they name. Returns (accepted, rejected, the other files). With an expired list, the other files
    are all refused: nothing signed by a key the root no longer vouches for is taken."""
    accepted, rejected, rest = 0, [], []
    for path in files:
        if path.suffix != ".sjk":
            rest.append(path)
            continue
        try:
            data = carried_files.read(path)
            if not data.startswith(KEYS_MAGIC):
                raise Refused("不是区局密钥文件 (not a hub key file)")
            adopt(st, unpack(data[len(KEYS_MAGIC) :]))
            accepted += 1
        except carried_files.CarriedFileRefused as exc:
            rejected.append(exc.refusal.row())
        except (Refused, RemoteProtocolError) as exc:
            rejected.append({"file": str(path), "reason": str(exc)})
    try:
        check(st)
    except Refused as exc:
        rejected += [{"file": str(p), "reason": str(exc)} for p in rest]
        rest = []
    return accepted, rejected, rest
