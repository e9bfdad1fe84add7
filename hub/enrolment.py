"""Enrolment: one-time, expiring tokens scoped to a station code and tier; revocation.

The station makes its own keys. A token (protocol/enrolment.py) holds a secret and the fingerprint of
the hub's root key; the hub stores only the MAC key derived from the secret. Online, the token never
crosses the wire: the station asks for a challenge naming the token by a public id, then proves it
holds the token with an HMAC over the challenge and its own public keys. The hub answers with a signed
enrolment document, the history of its keys from the root (hub/keyring.py), and an HMAC of the answer
with the same key and challenge, so the station can tell the answer came from whoever issued the token
*and* that its keys chain to the root the token names. An enrolment file carries the same answer
without a challenge, and no token: the station needs the slip's token as well.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING

from hub import keyring
from present.webui import TIER_NAMES
from protocol.document import open_document
from protocol.enrolment import (
    SECRET_BYTES,
    answer_mac,
    claim_proof,
    decode_claim,
    encode_enrolment,
    enrol_proof,
    make_token,
    parse_token,
    token_id,
    token_key,
)
from protocol.enrolment_docs import CHALLENGE_KIND, EnrolAnswer, EnrolChallenge, Enrollment
from protocol.errors import MalformedError, RemoteProtocolError
from protocol.hubkeys import fingerprint
from protocol.keys import key_id
from protocol.wire import sign_message
from replica.errors import Refused
from sync.numbering import is_station_code

if TYPE_CHECKING:
    from hub.service import Hub

STATION_TIERS = ("township", "street", "village", "community", "field")
TOKEN_TTL_MS = 14 * 86_400_000
CHALLENGE_TTL_MS = 5 * 60 * 1000  # long enough to type nothing: the station answers at once


class EnrolmentError(RemoteProtocolError):
    default_status = 403
    default_code = "enrolment_refused"


def token_hash(token: str) -> bytes:
    """What the hub stores for a token: the MAC key derived from its secret. A string that is not a
    token gives a hash no token has, so looking it up simply finds nothing."""
    try:
        return token_key(parse_token(token))
    except MalformedError:
        return hashlib.sha256(b"not-a-token\x00" + token.encode()).digest()


def fingerprint_of(hub: Hub) -> str:
    """The fingerprint of the hub's current root key (what the slip shows and the token carries)."""
    return fingerprint(keyring.ensure(hub).root_pub)


def register(hub: Hub, *, station: str, name: str, tier: str, parent: str = "", ttl_ms: int = TOKEN_TTL_MS) -> str:
    """Register (or re-register) a station and issue a fresh one-time token for it."""
    if tier not in STATION_TIERS:
        choices = "、".join(f"{t}（{TIER_NAMES.get(t, t)}）" for t in STATION_TIERS)
        raise Refused(f"没有“{tier}”这个层级：--tier 请用其中之一：{choices} (unknown tier {tier!r})")
    if not is_station_code(station) or station == hub.hub_id:
        raise Refused(
            f"站点编码 {station!r} 不能用：请用字母和数字，分段用“-”连接，如 360802-T01-05，且不能与区局自身编码相同"
            " (station code is not usable)"
        )
    if parent:
        p = hub.store.station(parent)
        if p is None:
            raise Refused(f"上级站点 {parent} 还没有登记：请先登记上级乡镇或街道，再登记本站 (parent not registered)")
        if p.tier not in ("township", "street"):
            raise Refused(
                f"上级站点 {parent} 是{TIER_NAMES.get(p.tier, p.tier)}，只有乡镇或街道可以作为上级："
                f"请用 --parent 指定所属乡镇或街道的编码 (parent is a {p.tier})"
            )
    if tier in ("village", "community") and not parent:
        raise Refused(
            f"登记{TIER_NAMES.get(tier, tier)}站点须用 --parent 指定所属乡镇或街道的编码"
            f" (a {tier} station needs --parent)"
        )
    token = make_token(secrets.token_bytes(SECRET_BYTES), keyring.ensure(hub).root_pub)
    now = hub.clock()
    with hub.store.transaction():
        hub.store.add_station(station, name, tier, parent, now)
        # Only the newest token works: one issued earlier and still lying around in a drawer or an
        # old message must not be able to take the station over later.
        for thash, _expires, used in hub.store.tokens_for(station):
            if used is None:
                hub.store.use_token(thash, now)
        hub.store.add_token(token_key(token), station, tier, now + ttl_ms)
    hub.forget_tiers()
    return str(token)


def _check_token(hub: Hub, key: bytes) -> str:
    """The station an open token was issued for, or EnrolmentError saying what to do."""
    found = hub.store.token(key)
    if found is None:
        raise EnrolmentError("令牌无效 (unknown enrolment token; ask the hub operator for a new one)")
    station, _tier, expires, used = found
    if used is not None:
        raise EnrolmentError("令牌已使用过 (this enrolment token has already been used; ask for a new one)")
    if expires < hub.clock():
        raise EnrolmentError("令牌已过期 (this enrolment token has expired; ask the hub operator for a new one)")
    return station


def _key_for_id(hub: Hub, tid: str) -> bytes:
    """The token key whose public id is `tid` (a scan: tokens are few, and ids reveal nothing)."""
    for key in hub.store.token_hashes():
        if hmac.compare_digest(token_id(key), tid):
            return key
    raise EnrolmentError("令牌无效 (unknown enrolment token; ask the hub operator for a new one)")


def challenge(hub: Hub, tid: str) -> bytes:
    """A fresh challenge for the token named `tid`, signed by the hub so that it needs no storage."""
    if not isinstance(tid, str) or len(tid) != 16:
        raise MalformedError("令牌编号格式不对 (an enrolment challenge request names a 16-digit token id)")
    _check_token(hub, _key_for_id(hub, tid))
    return sign_message(
        EnrolChallenge(tid, os.urandom(16), hub.clock()), signer=hub.hub_id, recipient="*", signing_key=hub.keys.sign
    ).frame


def redeem_proof(
    hub: Hub, *, challenge_doc: bytes, sign_pub: bytes, seal_pub: bytes, proof: bytes
) -> dict[str, object]:
    """Online enrolment: check our own challenge and the station's proof, then consume the token."""
    if len(sign_pub) != 32 or len(seal_pub) != 32 or len(proof) != 32:
        raise MalformedError("公钥与证明须各为 32 字节 (public keys and the proof must be 32 bytes each)")
    kid = hub.keys.sign_key_id
    doc = open_document(
        challenge_doc,
        kind=CHALLENGE_KIND,
        recipient="*",
        verify_key=lambda s, k: hub.keys.sign.public_key() if s == hub.hub_id and k == kid else None,
    )
    try:
        body = EnrolChallenge.from_wire(doc.body)
    except MalformedError as exc:
        raise MalformedError(f"接入挑战格式不对 (the enrolment challenge is malformed: {exc})") from exc
    if not 0 <= hub.clock() - body.at_ms <= CHALLENGE_TTL_MS:
        raise EnrolmentError("登记挑战已过期，请重新接入 (the enrolment challenge expired; run node init again)")
    key = _key_for_id(hub, body.token_id)
    if not hmac.compare_digest(enrol_proof(key, challenge_doc, sign_pub, seal_pub), proof):
        # Someone without the token (or with other keys than the ones it proved): nothing is consumed.
        raise EnrolmentError(
            "登记证明不符 (the enrolment proof does not match this token and these keys; "
            "check the token on the enrolment slip)"
        )
    return _consume(hub, key, sign_pub, seal_pub, challenge_doc)


def redeem(hub: Hub, *, token: str, sign_pub: bytes, seal_pub: bytes) -> dict[str, object]:
    """Consume a token in process (the hub's own tools and tests) and return the station's answer."""
    if len(sign_pub) != 32 or len(seal_pub) != 32:
        raise MalformedError("public keys must be 32 bytes each")
    return _consume(hub, token_hash(token), sign_pub, seal_pub, b"")


def _consume(hub: Hub, key: bytes, sign_pub: bytes, seal_pub: bytes, challenge_doc: bytes) -> dict[str, object]:
    with hub.store.transaction():
        station = _check_token(hub, key)
        hub.store.use_token(key, hub.clock())
        hub.store.set_station_keys(station, sign_pub, seal_pub, key_id(sign_pub), hub.clock())
    hub.forget_tiers()
    return _answer(hub, station, key, challenge_doc, station_sign_pub=sign_pub).to_wire()


def enrolment_document(hub: Hub, station_code: str, *, hub_url: str = "", station_sign_pub: bytes = b"") -> bytes:
    st = hub.store.station(station_code)
    assert st is not None
    release = hub.store.latest_release()
    chain = keyring.ensure(hub)
    body = Enrollment(
        station=st.code,
        name=st.name,
        tier=st.tier,
        parent=st.parent,
        hub_id=hub.hub_id,
        hub_name=hub.name,
        hub_url=hub_url,
        hub_sign_pub=hub.keys.sign_pub,
        hub_seal_pub=hub.keys.seal_pub,
        hub_root_pub=chain.root_pub,
        station_sign_pub=station_sign_pub,
        catalogue=release[1] if release else None,
    )
    return sign_message(body, signer=hub.hub_id, recipient=st.code, signing_key=hub.keys.sign).frame


def _answer(
    hub: Hub, station: str, key: bytes, challenge_doc: bytes, *, station_sign_pub: bytes = b"", hub_url: str = ""
) -> EnrolAnswer:
    doc = enrolment_document(hub, station, hub_url=hub_url, station_sign_pub=station_sign_pub)
    # The document already carries the release, so the key history leaves it out.
    return EnrolAnswer(doc, keyring.key_bundle(hub, with_release=False), answer_mac(key, challenge_doc, doc))


def enrolment_file(hub: Hub, station: str, token: str, hub_url: str = "") -> bytes:
    """What `hub enroll --out FILE` writes: everything a never-online station needs to start, except
    the token itself, which travels separately (on the slip) and binds the file to this hub's root."""
    answer = _answer(hub, station, token_hash(token), b"", hub_url=hub_url)
    return encode_enrolment(replace(answer, hub_url=hub_url, fingerprint=fingerprint_of(hub)).to_wire())


def accept_claim(hub: Hub, data: bytes) -> str:
    """A station's claim file (from a USB export): pin its keys if the proof matches an open token."""
    station, sign_pub, seal_pub, proof = decode_claim(data)
    st = hub.store.station(station)
    if st is not None and st.sign_pub == sign_pub:
        return station  # already pinned: carrying the same stick twice changes nothing
    now = hub.clock()
    with hub.store.transaction():
        match = None
        for thash, expires, used in hub.store.tokens_for(station):
            expected = claim_proof(thash, station, sign_pub, seal_pub)
            if used is None and expires >= now and hmac.compare_digest(expected, proof):
                match = thash
        if match is None:
            raise EnrolmentError(
                f"站点 {station} 的接入确认文件与区局发出的登记令牌不符（令牌已作废、已用过或已过期）：请在区局"
                f"重新 sanji hub enroll 该站，用新的登记文件和令牌重新接入 (claim for {station} does not match "
                "an open, unexpired enrolment token)"
            )
        hub.store.use_token(match, now)
        hub.store.set_station_keys(station, sign_pub, seal_pub, key_id(sign_pub), now)
    hub.forget_tiers()
    return station


def take_claim(hub: Hub, data: bytes, source: str) -> str:
    """A claim as the hub takes it, whoever carried it (a stick to `hub import`, or a township's relay
    round to ``POST /v1/enroll/claim``): pinned, or refused and written to the refusal log."""
    try:
        return accept_claim(hub, data)
    except RemoteProtocolError as exc:
        with hub.store.transaction():
            hub.store.reject(source, "", f"{exc.code}: {exc}", hub.clock())
        raise
