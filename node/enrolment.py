"""Making a station: keys made here, the hub's root and keys pinned, the catalogue verified and stored.

Online: `sanji node init DIR --hub URL --token TOKEN`. The token never crosses the wire: the station
asks for a challenge (naming the token by a public id), proves it holds the token with an HMAC over the
challenge and its own public keys, and checks the answer before pinning anything:
- its MAC, made with the token's key over the same challenge (only whoever issued the token can);
- its key history, which must start from a root whose fingerprint is the one the token carries and
  lead, through signatures, to the online key that signed the enrolment document.
A man in the middle learns nothing he can reuse and cannot make the station trust another hub.

Offline: `sanji node init DIR --enrollment FILE --token TOKEN`. The file carries the same answer (no
challenge) but not the token, which comes from the enrolment slip: a file alone enrols nobody, and a
file re-signed by someone else does not lead to the root the slip's token names.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiohttp

from node import hub_answer, hubkeys
from node.station import Station
from protocol.codec import Limits, pack, unpack
from protocol.document import open_document
from protocol.enrolment import (
    Token,
    check_answer_mac,
    claim_proof,
    decode_enrolment,
    enrol_proof,
    parse_token,
    token_id,
    token_key,
)
from protocol.enrolment_docs import ChallengeAnswer, ChallengeRequest, EnrolAnswer, Enrollment, EnrolRequest
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.hubkeys import KeyList, check_current, fingerprint_chars, follow
from protocol.keys import key_id, load_verify_key
from replica import carried_files, folders
from replica.errors import Refused

TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)
ANSWER_MAX_BYTES = hubkeys.ANSWER_MAX_BYTES
_ANSWER_LIMITS = Limits(
    max_bytes=ANSWER_MAX_BYTES, max_str=4096, max_bin=ANSWER_MAX_BYTES, max_array=4096, max_map=64, max_depth=4
)


def _token(text: str) -> Token:
    try:
        return parse_token(text)
    except RemoteProtocolError as exc:
        raise Refused(str(exc), code="bad_token") from exc


def _verified(raw: object, token: Token, challenge: bytes, now_ms: int) -> tuple[Enrollment, KeyList]:
    """The enrolment document's body and the key list it is signed under, or Refused saying why."""
    try:
        answer = EnrolAnswer.from_wire(raw)
    except RemoteProtocolError as exc:
        raise Refused(
            "登记应答不完整 (the enrolment answer is incomplete: it lacks its document, MAC or the hub's "
            f"keys; the hub may be too old, or this is not a Sanji hub: {exc})"
        ) from exc
    doc_bytes, mac, bundle = answer.enrollment, answer.mac, answer.keys
    anchor = next((r for r in bundle.roots if fingerprint_chars(r) == token.fingerprint), None)
    if anchor is None:
        raise Refused(
            f"区局根密钥指纹与令牌不符，拒绝接入 (the hub's root key does not have the fingerprint "
            f"{token.fingerprint_text} that the token carries: this may not be your district's hub. "
            "Nothing was pinned; check the token against the enrolment slip and call the district)",
            code="fingerprint_mismatch",
        )
    if not check_answer_mac(token_key(token), challenge, doc_bytes, mac):
        raise Refused(
            "登记应答与令牌不符，拒绝信任 (the enrolment answer was not made with this token: it may "
            "have been altered, or the file and token are for different stations. Nothing was pinned; "
            "ask the district for a new token and file)",
            code="mac_mismatch",
        )
    try:
        hub_id = str(peek_header(doc_bytes).get("signer", ""))
        _root, keys = follow(bundle.docs, hub_id=hub_id, anchor=anchor)
        if keys is None:
            raise Refused(
                "区局密钥链无法从令牌所指的根密钥核验，拒绝接入 (the hub's key history holds no key list "
                "signed by the root the token names: this may not be your district's hub; call the "
                "district)",
                code="fingerprint_mismatch",
            )
        check_current(keys, now_ms)
        pinned = load_verify_key(keys.sign)
        doc = open_document(
            doc_bytes,
            kind=Enrollment.KIND,
            recipient=str(peek_header(doc_bytes).get("recipient", "")),
            verify_key=lambda s, k: pinned if s == hub_id and k == keys.sign_key_id else None,
        )
        body = Enrollment.from_wire(doc.body)
    except RemoteProtocolError as exc:
        raise Refused(
            f"登记文件签名无法核验，拒绝接入 (the enrolment document does not verify under the hub's "
            f"keys from the root the token names: {exc})",
            code="bad_signature",
        ) from exc
    if body.hub_id != hub_id or body.hub_seal_pub != keys.seal:
        raise Refused("登记文件内容有误 (the enrolment document names other keys than the hub's key list)")
    return body, keys


def _pin(
    st: Station, answer: object, token: str, hub_url: str, *, online: bool, challenge: bytes = b""
) -> dict[str, object]:
    tok = _token(token)
    body, keys = _verified(answer, tok, challenge, st.clock())
    own = body.station_sign_pub
    if online and own and own != st.keys.sign_pub:
        raise Refused("登记应答针对的是别的密钥 (the hub's answer is for other keys than this station's; retry)")
    station, hub_id = body.station, body.hub_id
    url = hub_url or body.hub_url
    with st.transaction():
        for key, value in (
            ("station", station),
            ("name", body.name),
            ("tier", body.tier),
            ("parent", body.parent),
            ("hub_url", url),
            ("hub_id", hub_id),
            ("epoch", 1),
            ("seq", 0),
            ("hlc", 0),
            ("counter", 0),
            ("batched_seq", 0),
            ("chain", bytes(32)),
            ("feed_cursor", 0),
            ("enrolled", online),
            (
                "enrol_proof",
                b"" if online else claim_proof(token_key(tok), station, st.keys.sign_pub, st.keys.seal_pub),
            ),
        ):
            st.meta.set(key, value)
        hubkeys.pin(st, keys)
        origins = {station: body.tier, hub_id: "district"}
        if body.parent:
            origins[body.parent] = "township"
        st.remember_origins(origins)
        version = 0
        if body.catalogue is not None:
            version, _ = st.store_catalogue(body.catalogue)
    return {"station": station, "tier": body.tier, "catalogue_version": version}


def _shown(st: Station, out: dict[str, object]) -> dict[str, object]:
    """What `node init` prints besides: the fingerprint it pinned, for staff to compare with the slip."""
    return {
        **out,
        "hub_fingerprint": hubkeys.pinned_fingerprint(st),
        "hub_key_id": key_id(st.meta.bytes("hub_sign_pub")),
    }


# A village that reaches only its township cannot enrol through the relay (enrolment needs the hub's
# answer at once), so the refusal names the offline way in, which `--hub` and `--relay` accompany.
UNREACHABLE_THEN = (
    "尚未接入，本站文件夹未建立；请核对地址后重试，或带上区局 sanji hub enroll --out 给的登记文件离线接入："
    "sanji node init 目录 --enrollment 登记文件 --token 令牌（--hub、--relay 照写）"
)


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, object]) -> dict[str, object]:
    async with session.post(url, data=pack(body), headers={"Content-Type": "application/msgpack"}) as resp:
        data = await hubkeys.read_capped(resp, ANSWER_MAX_BYTES)
        if resp.status != 200:
            try:
                reason = str(json.loads(data).get("message") or resp.reason)
            except (ValueError, AttributeError):
                reason = f"HTTP {resp.status} {resp.reason}"
            raise Refused(f"区局拒绝接入 (enrolment refused by the hub: {reason})")
    try:
        answer = unpack(data, limits=_ANSWER_LIMITS)
    except RemoteProtocolError as exc:
        raise Refused(f"区局的接入应答无法解析，未接入 (the hub's enrolment answer is malformed: {exc})") from exc
    if not isinstance(answer, dict):
        raise Refused("区局的接入应答格式不对，未接入 (the hub's enrolment answer is malformed)")
    return answer


async def _enrol(url: str, tok: Token, st: Station) -> tuple[dict[str, object], bytes]:
    key = token_key(tok)
    base = url.rstrip("/")
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            got = await _post(session, f"{base}/v1/enroll/challenge", ChallengeRequest(token_id(key)).to_wire())
            try:
                challenge = ChallengeAnswer.from_wire(got).challenge
            except RemoteProtocolError as exc:
                raise Refused(
                    "区局的接入挑战格式不对，未接入 (the hub's enrolment challenge is malformed; is this a Sanji hub?)"
                ) from exc
            proof = enrol_proof(key, challenge, st.keys.sign_pub, st.keys.seal_pub)
            request = EnrolRequest(challenge, st.keys.sign_pub, st.keys.seal_pub, proof)
            answer = await _post(session, f"{base}/v1/enroll", request.to_wire())
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise hub_answer.unreachable(url, exc, UNREACHABLE_THEN) from exc
    return answer, challenge


def init_online(folder: Path, hub_url: str, token: str) -> dict[str, object]:
    tok = _token(token)  # a mistyped token is refused before anything is made
    st = _fresh(folder)
    try:
        answer, challenge = asyncio.run(_enrol(hub_url, tok, st))
        return _shown(st, _pin(st, answer, token, hub_url, online=True, challenge=challenge))
    except BaseException:
        st.close()
        shutil.rmtree(folder, ignore_errors=True)  # a failed enrolment leaves nothing half-made
        raise
    finally:
        st.close()


def init_from_file(folder: Path, path: Path, hub_url: str = "", token: str | None = None) -> dict[str, object]:
    if not token:
        raise Refused(
            "登记文件须与登记单上的令牌一起使用 (an enrolment file needs the token from its enrolment "
            "slip: add --token SJT-…)",
            code="token_required",
        )
    _token(token)
    try:
        answer = decode_enrolment(carried_files.read(path))  # size-checked, links not followed
    except (carried_files.CarriedFileRefused, RemoteProtocolError) as exc:
        raise Refused(f"登记文件无法使用 (cannot use enrolment file {path}: {exc})") from exc
    st = _fresh(folder)
    try:
        return _shown(st, _pin(st, answer, token, hub_url, online=False))
    except BaseException:
        st.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        st.close()


def _fresh(folder: Path) -> Station:
    folders.need_new(folder, "站点")  # a station needs a folder of its own
    return Station(folder, create=True)
