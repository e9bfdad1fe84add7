"""The acceptance receipt (受理通知书) and whether the hub has signed for an application.

The receipt is printed while the citizen waits, usually offline: it carries the application number,
the items, the materials still owed and by when, the due date, the masked ID number and the citizen's
tracking code with a QR code of the hub's public tracking page (``node/track_notice.py``). Once the
batch holding the application reaches the hub, the hub's signed receipt comes back in the outbox; the
same page then says so ("已送达区行政审批局") after checking the hub's signature with the pinned key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node import commands
from node.station import Station
from node.track_notice import accepted_by, notice
from protocol.acks import Receipt
from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from replica.errors import Refused
from sync.identity import mask_id, mask_phone
from sync.outbox import HELD, BatchState


@dataclass(frozen=True)
class Upload:
    """Where an application's own changes stand on their way to the hub."""

    state: str  # receipted | quarantined | pending | rejected | local
    at: str = ""
    hub_name: str = ""
    batch: str = ""
    reason: str = ""
    verified: bool = False


def _settled(st: Station) -> list[tuple[int, int, int, str, bytes | None, str, int | None]]:
    rows = st.conn.execute("SELECT epoch, first_seq, last_seq, state, receipt, reason, receipted_ms FROM outbox")
    return [
        (int(e), int(a), int(b), str(s), bytes(r) if r is not None else None, str(why or ""), t)
        for e, a, b, s, r, why, t in rows
    ]


def upload_state(
    st: Station, app_id: str, outbox: list[Any] | None = None, *, first: bool = False, verify: bool = True
) -> Upload:
    """The state of our latest change to this application (or, with ``first``, of the acceptance
    itself, which is what a receipt is about): receipted only when the hub signed for its batch.

    ``verify=False`` is for a list of many applications: the receipt's Ed25519 signature is checked
    where it is shown (this application's page and its printed notice), not once per row of a list,
    which at ten thousand rows cost seconds; ``verified`` then stays False and the badge says only
    what the outbox holds."""
    order = "ASC" if first else "DESC"
    # INDEXED BY: left to itself SQLite walks the (origin, epoch, seq) key backwards through the whole
    # log of this station to find one application's changes; an application has a handful of them.
    row = st.conn.execute(
        "SELECT epoch, seq FROM changes INDEXED BY changes_application WHERE application=? AND origin=?"
        f" ORDER BY epoch {order}, seq {order} LIMIT 1",
        (app_id, st.code),
    ).fetchone()
    if row is None:
        return Upload("receipted")  # nothing of ours to send: it came from the hub or another station
    epoch, seq = int(row[0]), int(row[1])
    for e, lo, hi, state, receipt, reason, _ in outbox if outbox is not None else _settled(st):
        if e == epoch and lo <= seq <= hi:
            if BatchState(state) in HELD and receipt:
                return _verified(st, receipt, state) if verify else Upload(state)
            rejected = BatchState(state) is BatchState.REJECTED
            return Upload((BatchState.REJECTED if rejected else BatchState.PENDING).value, reason=reason)
    return Upload("local")  # not yet in a batch: the next sync round packs it


def _verified(st: Station, receipt: bytes, state: str) -> Upload:
    try:
        doc = open_document(receipt, kind=Receipt.KIND, recipient=st.code, verify_key=st.hub_key)
        body = Receipt.from_wire(doc.body)
    except RemoteProtocolError as exc:
        return Upload(state, reason=f"回执签名无法核验：{exc}")
    return Upload(state, at=body.at, hub_name=body.hub_name, batch=body.batch.hex()[:16], verified=True)


def receipt_view(st: Station, numbers: list[str]) -> dict[str, Any]:
    cat = st.catalogue().catalogue
    entries = []
    outbox = _settled(st)
    for number in numbers:
        app_id = commands.find(st, number)
        vals = st.records.values("application", app_id)
        if not vals:
            raise Refused(f"本站没有编号为 {number} 的办件")
        item = cat.items.get(str(vals.get("item", "")))
        materials = [(k[2:], v) for k, v in vals.items() if k.startswith("m.") and isinstance(v, list)]
        entries.append(
            {
                "number": number,
                "item": item,
                "item_code": vals.get("item"),
                "status": vals.get("status"),
                "due_date": vals.get("due_date"),
                "accepted_at": vals.get("accepted_at"),
                "received": sorted(n for n, v in materials if v[0] == "submitted"),
                # 容缺 materials brought later (node/supplement.py), each with the day it was received
                "supplemented": sorted((n, str(v[1])) for n, v in materials if v[0] == "supplemented"),
                "owed": sorted(
                    ((n, str(v[1])) for n, v in materials if v[0] == "deferred"), key=lambda x: (x[1], x[0])
                ),
                "upload": upload_state(st, app_id, outbox, first=True),
                "track": notice(st, app_id),  # the citizen's tracking code and its QR code
            }
        )
    first = st.shown_values("application", commands.find(st, numbers[0]))
    theme_code = str(first.get("theme") or "")
    theme = cat.themes.get(theme_code) if theme_code else None
    return {
        "entries": entries,
        "name": first.get("applicant_name", ""),
        "id_masked": mask_id(str(first.get("applicant_id", ""))),
        "phone_masked": mask_phone(str(first.get("applicant_phone", ""))),
        "address": first.get("address", ""),
        "accepted_at": first.get("accepted_at"),
        "theme": theme,
        "station_name": st.meta.text("name"),
        "accepted_by": accepted_by(st, commands.find(st, numbers[0])),  # 受理人 (node/track_notice.py)
        "station": st.code,
        "all_receipted": all(e["upload"].state in ("receipted", "quarantined") for e in entries),
    }
