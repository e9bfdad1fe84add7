"""The enrolment and hub-key routes: the two steps of an online enrolment, and the key history.

- `POST /v1/enroll/challenge` `{"token_id"}` → `{"challenge"}`: a hub-signed, five-minute challenge.
- `POST /v1/enroll` `{"challenge", "sign_pub", "seal_pub", "proof"}` → the enrolment answer. The proof
  is an HMAC with the token's key over the challenge and the station's keys (protocol/enrolment.py):
  the token itself never travels, and a proof is good for these keys and this challenge only.
- `POST /v1/enroll/claim` (a claim file's bytes, as `node export` wrote it) → `{"claimed": code}`, or the
  refusal `hub import` gives the same file: a township's relay round carries a village's offline
  enrolment this way (node/relay_forward.py). The claim's HMAC with the token's key is its whole
  authority, so who carries it does not matter.
- `GET /v1/keys?after=N` → the hub's key history (root changes and key lists, hub/keyring.py) and its
  latest release, or just `{"version"}` when the station already holds list N. No login: every
  document in it is signed, and a station trusts only what chains to the root it pinned.
"""

from __future__ import annotations

from aiohttp import web

from hub import enrolment, keyring
from hub.appkeys import HUB
from hub.service import Hub
from protocol.codec import pack, unpack
from protocol.enrolment import CLAIM_MAGIC
from protocol.enrolment_docs import ChallengeAnswer, ChallengeRequest, EnrolRequest
from protocol.errors import MalformedError, TooLargeError
from protocol.limits import ENROL_LIMITS, ENROL_REQUEST_MAX_BYTES

ANSWER_TYPE = "application/msgpack"


def _hub(request: web.Request) -> Hub:
    return request.app[HUB]


async def _request_bytes(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > ENROL_REQUEST_MAX_BYTES:
        raise TooLargeError(f"接入请求过大 (an enrolment request is at most {ENROL_REQUEST_MAX_BYTES} bytes)")
    data = await request.content.read(ENROL_REQUEST_MAX_BYTES + 1)
    while len(data) <= ENROL_REQUEST_MAX_BYTES and (
        more := await request.content.read(ENROL_REQUEST_MAX_BYTES + 1 - len(data))
    ):
        data += more
    if len(data) > ENROL_REQUEST_MAX_BYTES:
        raise TooLargeError(f"接入请求过大 (an enrolment request is at most {ENROL_REQUEST_MAX_BYTES} bytes)")
    return data


async def _request_map(request: web.Request) -> dict[str, object]:
    raw = unpack(await _request_bytes(request), ENROL_LIMITS)
    if not isinstance(raw, dict):
        raise MalformedError("接入请求格式不对 (an enrolment request is a map)")
    return raw


async def enrol_challenge(request: web.Request) -> web.Response:
    try:
        tid = ChallengeRequest.from_wire(await _request_map(request)).token_id
    except MalformedError as exc:
        raise MalformedError(
            "接入请求须给出令牌编号，而非令牌本身 (an enrolment challenge request names its token_id, never the "
            f"token: {exc})"
        ) from exc
    answer = ChallengeAnswer(enrolment.challenge(_hub(request), tid))
    return web.Response(body=pack(answer.to_wire()), content_type=ANSWER_TYPE)


async def enrol(request: web.Request) -> web.Response:
    try:
        req = EnrolRequest.from_wire(await _request_map(request))
    except MalformedError as exc:
        raise MalformedError(
            "接入请求不完整 (enrolment request needs challenge, sign_pub, seal_pub and proof, the keys and proof "
            f"32 bytes each; the token itself is never sent: {exc})"
        ) from exc
    answer = enrolment.redeem_proof(
        _hub(request), challenge_doc=req.challenge, sign_pub=req.sign_pub, seal_pub=req.seal_pub, proof=req.proof
    )
    return web.Response(body=pack(answer), content_type=ANSWER_TYPE)


async def enrol_claim(request: web.Request) -> web.Response:
    """The very check `hub import` makes of a claim file (hub/enrolment.py ``take_claim``)."""
    data = await _request_bytes(request)
    if not data.startswith(CLAIM_MAGIC):
        raise MalformedError("不是接入确认文件（claim），未处理 (not a Sanji claim file)")
    # The refusal log names the route, not a township: who carried a claim is not proven, nor needed.
    return web.json_response({"claimed": enrolment.take_claim(_hub(request), data, "http:/v1/enroll/claim")})


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
    app.router.add_post("/v1/enroll/claim", enrol_claim)
    app.router.add_get("/v1/keys", hub_keys)
