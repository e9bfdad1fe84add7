"""Making a station: keys made here, the hub's keys pinned, the catalogue verified and stored.

Online: `sanji node init DIR --hub URL --token TOKEN` sends the token and our public keys. Offline:
`sanji node init DIR --enrollment FILE` reads the file the hub wrote; the hub learns our keys from the
claim file our first USB export carries.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from node import client
from node.station import Station
from protocol.document import open_document
from protocol.enrolment import check_answer_mac, claim_proof, decode_enrolment, token_digest
from protocol.errors import RemoteProtocolError
from protocol.keys import key_id, load_verify_key
from replica import carried_files
from replica.errors import Refused


def _pin(st: Station, answer: dict[str, object], token: str, hub_url: str, *, online: bool) -> dict[str, object]:
    doc_bytes, mac, hub_pub = answer.get("enrollment"), answer.get("mac"), answer.get("hub_sign_pub")
    if not (isinstance(doc_bytes, bytes) and isinstance(mac, bytes) and isinstance(hub_pub, bytes)):
        raise Refused("the enrolment answer is incomplete")
    if not check_answer_mac(token, doc_bytes, mac):
        raise Refused("the enrolment answer was not made with this token: refusing to trust it")
    try:
        pinned = load_verify_key(hub_pub)
        doc = open_document(doc_bytes, kind="enrollment", recipient=str(_peek_station(doc_bytes)),
                            verify_key=lambda s, k: pinned if k == key_id(hub_pub) else None)
    except RemoteProtocolError as exc:
        raise Refused(f"the enrolment document does not verify: {exc}") from exc
    body = doc.body
    if not isinstance(body, dict):
        raise Refused("the enrolment document is malformed")
    station, hub_id = str(body["station"]), str(body["hub_id"])
    seal_pub = body["hub_seal_pub"]
    assert isinstance(seal_pub, bytes)
    with st.transaction():
        for key, value in (
            ("station", station), ("name", str(body.get("name", ""))), ("tier", str(body["tier"])),
            ("parent", str(body.get("parent", ""))), ("hub_url", hub_url), ("hub_id", hub_id),
            ("hub_sign_pub", hub_pub), ("hub_seal_pub", seal_pub), ("hub_seal_key_id", key_id(seal_pub)),
            ("epoch", 1), ("seq", 0), ("hlc", 0), ("counter", 0), ("batched_seq", 0), ("chain", bytes(32)),
            ("feed_cursor", 0), ("enrolled", online),
            ("enrol_proof", b"" if online else claim_proof(token_digest(token), station, st.keys.sign_pub,
                                                            st.keys.seal_pub)),
        ):
            st.meta.set(key, value)
        origins = {station: str(body["tier"]), hub_id: "district"}
        if body.get("parent"):
            origins[str(body["parent"])] = "township"
        st.remember_origins(origins)
        version = 0
        if isinstance(body.get("catalogue"), bytes):
            version, _ = st.store_catalogue(body["catalogue"])
    return {"station": station, "tier": str(body["tier"]), "catalogue_version": version}


def _peek_station(doc: bytes) -> str:
    from protocol.frame import peek_header

    return str(peek_header(doc).get("recipient", ""))


def init_online(folder: Path, hub_url: str, token: str) -> dict[str, object]:
    st = _fresh(folder)
    try:
        answer = asyncio.run(client.enrol(hub_url, token=token, station="", sign_pub=st.keys.sign_pub,
                                          seal_pub=st.keys.seal_pub))
        return _pin(st, answer, token, hub_url, online=True)
    except BaseException:
        st.close()
        shutil.rmtree(folder, ignore_errors=True)  # a failed enrolment leaves nothing half-made
        raise
    finally:
        st.close()


def init_from_file(folder: Path, path: Path, hub_url: str = "") -> dict[str, object]:
    try:
        answer = decode_enrolment(carried_files.read(path))  # size-checked, links not followed
    except (carried_files.CarriedFileRefused, RemoteProtocolError) as exc:
        raise Refused(f"cannot use enrolment file {path}: {exc}") from exc
    token = answer.get("token")
    if not isinstance(token, str):
        raise Refused("the enrolment file carries no token")
    st = _fresh(folder)
    try:
        url = hub_url or str(answer.get("hub_url") or "")
        return _pin(st, answer, token, url, online=False)
    except BaseException:
        st.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        st.close()


def _fresh(folder: Path) -> Station:
    if folder.exists() and any(folder.iterdir()):
        raise Refused(f"{folder} is not empty; a station needs a folder of its own")
    return Station(folder, create=True)
