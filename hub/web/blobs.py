"""HTTP routes for photos and scans: resumable, chunked, and signed by the station for every request.

- ``GET /v1/blobs/{sha256}``: which chunks (by index, :data:`protocol.blob.CHUNK_SIZE` bytes each)
  of the blob the hub already holds, so an upload cut short resumes with only the rest;
- ``PUT /v1/blobs/{sha256}/{index}``: one chunk.

Both carry an ``X-Sanji-Request`` header: a ``"blob"`` document signed by the station (the same
pattern as a pull), naming the blob, its size, the chunk index and the SHA-256 of the chunk's bytes,
and the time, so a header cannot be replayed later or reused for another blob or chunk. The hub
checks the signature against the station's pinned key (a revoked station is refused), the chunk's
bytes against the signed digest, and the whole blob against its name when complete
(``hub/blobindex.py``). Refusals are 4xx answers with a reason; nothing half-checked is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from hub import blobindex
from hub.appkeys import HUB
from hub.web.signed_request import signed_request
from protocol.blob import CHUNK_SIZE, BlobRequest
from protocol.document import open_document
from protocol.errors import MalformedError, TooLargeError
from replica.errors import Refused

if TYPE_CHECKING:
    from hub.service import Hub

REQUEST_WINDOW_MS = 15 * 60 * 1000


def _hub(request: web.Request) -> Hub:
    return request.app[HUB]


def _identity(request: web.Request, hub: Hub, op: str) -> tuple[str, BlobRequest]:
    """The station a blob request comes from, and what it asks, once its signature checks out."""
    data = signed_request(request, "a blob request")
    doc = open_document(data, kind=BlobRequest.KIND, recipient=hub.hub_id, verify_key=hub.verify_key)
    req = BlobRequest.from_wire(doc.body)
    if req.op != op:
        raise MalformedError(f"this route takes a {op!r} blob request, not {req.op!r}")
    if abs(req.at_ms - hub.clock()) > REQUEST_WINDOW_MS:
        raise Refused(
            "照片请求的时间与区局相差太多，区局不予处理：请校准本站电脑的日期和时间后重试"
            " (blob request is stale or from a clock far off)",
            code="stale",
        )
    if req.sha256 != request.match_info["sha256"]:
        raise MalformedError("the signed request names another blob than the address")
    return doc.signer, req


async def query_blob(request: web.Request) -> web.Response:
    hub = _hub(request)
    station, req = _identity(request, hub, "query")
    return web.json_response(dict(blobindex.progress(hub, station, req), chunk_size=CHUNK_SIZE))


async def put_chunk(request: web.Request) -> web.Response:
    hub = _hub(request)
    station, req = _identity(request, hub, "chunk")
    if request.match_info["index"] != str(req.index):
        raise MalformedError("the signed request names another chunk than the address")
    if request.content_length is not None and request.content_length > CHUNK_SIZE:
        raise TooLargeError(f"a chunk is at most {CHUNK_SIZE} bytes; got {request.content_length}")
    data = bytearray()
    # read() would return whatever has arrived so far; a chunk must be read to its end.
    async for part in request.content.iter_chunked(64 * 1024):
        data += part
        if len(data) > CHUNK_SIZE:
            raise TooLargeError(f"a chunk is at most {CHUNK_SIZE} bytes")
    out = blobindex.receive_chunk(hub, station, req, bytes(data), source=f"http:{request.remote or '?'}")
    return web.json_response(dict(out, chunk_size=CHUNK_SIZE))


def add_blob_routes(app: web.Application) -> None:
    app.router.add_get("/v1/blobs/{sha256}", query_blob)
    app.router.add_put("/v1/blobs/{sha256}/{index}", put_chunk)
