"""Enrolment: one-time, expiring tokens scoped to a station code and tier; revocation.

The station makes its own keys. It proves it holds the token by sending it (over HTTP) or an HMAC
keyed with it (in a claim file carried by hand, for a station that has never been online). The hub
answers with a signed enrolment document naming the hub's keys, and MACs that answer with the same
token so the station can tell it came from the hub that issued the token before pinning anything.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from typing import TYPE_CHECKING

from protocol.document import sign_document
from protocol.enrolment import (
    answer_mac,
    claim_proof,
    decode_claim,
    encode_enrolment,
    token_digest,
)
from protocol.errors import MalformedError, RemoteProtocolError
from protocol.keys import key_id
from replica.errors import Refused
from sync.numbering import is_station_code

if TYPE_CHECKING:
    from hub.service import Hub

STATION_TIERS = ("township", "street", "village", "community", "field")
TOKEN_TTL_MS = 14 * 86_400_000


class EnrolmentError(RemoteProtocolError):
    default_status = 403
    default_code = "enrolment_refused"


def token_hash(token: str) -> bytes:
    return token_digest(token)


def register(hub: Hub, *, station: str, name: str, tier: str, parent: str = "", ttl_ms: int = TOKEN_TTL_MS) -> str:
    """Register (or re-register) a station and issue a fresh one-time token for it."""
    if tier not in STATION_TIERS:
        raise Refused(f"unknown tier {tier!r}; use one of {', '.join(STATION_TIERS)}")
    if not is_station_code(station) or station == hub.hub_id:
        raise Refused(f"station code {station!r} is not usable: use letters and digits in parts joined by '-', "
                      "such as 360802-T01-05, different from the hub's own id")
    if parent:
        p = hub.store.station(parent)
        if p is None:
            raise Refused(f"parent {parent} is not registered; enrol it first")
        if p.tier not in ("township", "street"):
            raise Refused(f"parent {parent} is a {p.tier}; only a township or street centre can be a parent")
    if tier in ("village", "community") and not parent:
        raise Refused(f"a {tier} station needs --parent (its township or street centre)")
    token = "SJT-" + base64.urlsafe_b64encode(secrets.token_bytes(18)).decode()
    now = hub.clock()
    with hub.store.transaction():
        hub.store.add_station(station, name, tier, parent, now)
        # Only the newest token works: one issued earlier and still lying around in a drawer or an
        # old message must not be able to take the station over later.
        for thash, _expires, used in hub.store.tokens_for(station):
            if used is None:
                hub.store.use_token(thash, now)
        hub.store.add_token(token_hash(token), station, tier, now + ttl_ms)
    hub.forget_tiers()
    return token


def _check_token(hub: Hub, token: str, station: str) -> None:
    found = hub.store.token(token_hash(token))
    now = hub.clock()
    if found is None:
        raise EnrolmentError("unknown enrolment token; ask the hub operator for a new one")
    tok_station, _tier, expires, used = found
    if tok_station != station:
        raise EnrolmentError(f"this token was issued for station {tok_station}, not {station}")
    if used is not None:
        raise EnrolmentError("this enrolment token has already been used; ask for a new one")
    if expires < now:
        raise EnrolmentError("this enrolment token has expired; ask the hub operator for a new one")


def enrolment_document(hub: Hub, station_code: str) -> bytes:
    st = hub.store.station(station_code)
    assert st is not None
    release = hub.store.latest_release()
    return sign_document(
        "enrollment",
        {"station": st.code, "name": st.name, "tier": st.tier, "parent": st.parent, "hub_id": hub.hub_id,
         "hub_name": hub.name, "hub_sign_pub": hub.keys.sign_pub, "hub_seal_pub": hub.keys.seal_pub,
         "catalogue": release[1] if release else None},
        signer=hub.hub_id, recipient=st.code, signing_key=hub.keys.sign,
    )


def redeem(hub: Hub, *, token: str, sign_pub: bytes, seal_pub: bytes) -> dict[str, object]:
    """Consume a token and pin the station's keys; return the answer the station needs."""
    if len(sign_pub) != 32 or len(seal_pub) != 32:
        raise MalformedError("public keys must be 32 bytes each")
    found = hub.store.token(token_hash(token))
    if found is None:
        raise EnrolmentError("unknown enrolment token; ask the hub operator for a new one")
    station = found[0]
    with hub.store.transaction():
        _check_token(hub, token, station)
        hub.store.use_token(token_hash(token), hub.clock())
        hub.store.set_station_keys(station, sign_pub, seal_pub, key_id(sign_pub), hub.clock())
    hub.forget_tiers()
    return _answer(hub, station, token)


def _answer(hub: Hub, station: str, token: str) -> dict[str, object]:
    doc = enrolment_document(hub, station)
    return {"enrollment": doc, "mac": answer_mac(token, doc), "hub_sign_pub": hub.keys.sign_pub}


def enrolment_file(hub: Hub, station: str, token: str, hub_url: str = "") -> bytes:
    """What `hub enroll --out FILE` writes: everything a never-online station needs to start."""
    answer = _answer(hub, station, token)
    answer["token"] = token
    answer["hub_url"] = hub_url
    return encode_enrolment(answer)


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
            raise EnrolmentError(f"claim for {station} does not match an open, unexpired enrolment token")
        hub.store.use_token(match, now)
        hub.store.set_station_keys(station, sign_pub, seal_pub, key_id(sign_pub), now)
    hub.forget_tiers()
    return station
