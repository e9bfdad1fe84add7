"""The enrolment and hub-key routes: the two steps of an online enrolment, and the key history.

- `POST /v1/enroll/challenge` `{"token_id"}` → `{"challenge"}`: a hub-signed, five-minute challenge.
- `POST /v1/enroll` `{"challenge", "sign_pub", "seal_pub", "proof"}` → the enrolment answer. The proof
  is an HMAC with the token's key over the challenge and the station's keys (protocol/enrolment.py):
  the token itself never travels, and a proof is good for these keys and this challenge only.
- `GET /v1/keys?after=N` → the hub's key history (root changes and key lists, hub/keyring.py) and its
  latest release, or just `{"version"}` when the station already holds list N. No login: every
  document in it is signed, and a station trusts only what chains to the root it pinned.
"""

from __future__ import annotations

from aiohttp import web

from hub import enrolment, keyring
from hub.appkeys import HUB
from hub.service import Hub
from protocol.codec import Limits, pack, unpack
from protocol.errors import MalformedError, TooLargeError

REQUEST_MAX_BYTES = 4096
# The proof request carries the hub's own challenge document (a few hundred bytes) besides the keys.
ENROL_PROOF_LIMITS = Limits(max_bytes=REQUEST_MAX_BYTES, max_str=64, max_bin=1024, max_array=4, max_map=8, max_depth=2)
ANSWER_TYPE = "application/msgpack"


def _hub(request: web.Request) -> Hub:
    return request.app[HUB]


async def _request_map(request: web.Request) -> dict[str, object]:
    if request.content_length is not None and request.content_length > REQUEST_MAX_BYTES:
        raise TooLargeError(f"接入请求过大 (an enrolment request is at most {REQUEST_MAX_BYTES} bytes)")
    data = await request.content.read(REQUEST_MAX_BYTES + 1)
    while len(data) <= REQUEST_MAX_BYTES and (more := await request.content.read(REQUEST_MAX_BYTES + 1 - len(data))):
        data += more
    if len(data) > REQUEST_MAX_BYTES:
        raise TooLargeError(f"接入请求过大 (an enrolment request is at most {REQUEST_MAX_BYTES} bytes)")
    raw = unpack(data, ENROL_PROOF_LIMITS)
    if not isinstance(raw, dict):
        raise MalformedError("接入请求格式不对 (an enrolment request is a map)")
    return raw


async def enrol_challenge(request: web.Request) -> web.Response:
    raw = await _request_map(request)
    tid = raw.get("token_id")
    if not isinstance(tid, str):
        raise MalformedError(
            "接入请求须给出令牌编号，而非令牌本身 (an enrolment challenge request names its token_id, never the token)"
        )
    return web.Response(body=pack({"challenge": enrolment.challenge(_hub(request), tid)}), content_type=ANSWER_TYPE)


async def enrol(request: web.Request) -> web.Response:
    raw = await _request_map(request)
    challenge, sign_pub, seal_pub, proof = (raw.get(k) for k in ("challenge", "sign_pub", "seal_pub", "proof"))
    if not (
        isinstance(challenge, bytes)
        and isinstance(sign_pub, bytes)
        and isinstance(seal_pub, bytes)
        and isinstance(proof, bytes)
    ):
        raise MalformedError(
            "接入请求不完整 (enrolment request needs challenge, sign_pub, seal_pub and proof; "
            "the token itself "
            "is never sent)"
        )
    answer = enrolment.redeem_proof(
        _hub(request), challenge_doc=challenge, sign_pub=sign_pub, seal_pub=seal_pub, proof=proof
    )
    return web.Response(body=pack(answer), content_type=ANSWER_TYPE)


async def hub_keys(request: web.Request) -> web.Response:
    hub = _hub(request)
    try:
        after = int(request.query.get("after", "0"))
    except ValueError as exc:
        raise MalformedError("after 须为整数 (after must be an integer)") from exc
    return web.Response(body=pack(keyring.bundle(hub, after=after)), content_type=ANSWER_TYPE)


def add_enrolment_routes(app: web.Application) -> None:
    app.router.add_post("/v1/enroll/challenge", enrol_challenge)
    app.router.add_post("/v1/enroll", enrol)
    app.router.add_get("/v1/keys", hub_keys)
