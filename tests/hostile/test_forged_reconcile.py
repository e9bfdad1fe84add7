"""Issue 12, attack 4: forged hub changes smuggled in through reconciliation, against a real hub process.

A village signs a `repair` reconcile request with its own keys, exactly as `sanji node reconcile`
does, carrying a "foreign" change that claims the hub as its origin: an approval, under the seq the
hub's own chain will take next but one. The hub cannot check the claimed origin's signature, so the
change must be held under the village's name, never shown as signed by the hub; an operator's
release must write a new change of the hub's own (new seq, audited), and the seq the forgery
claimed must stay free for the hub's real next change, which has to take effect.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import aiohttp
import pytest

from node.reconcile import Conversation
from node.station import Station
from protocol.codec import unpack
from protocol.reconciliation import RepairAnswer
from tests.hostile.compromised import (
    OPERATOR,
    VILLAGE,
    Dashboard,
    District,
    build_district,
    held,
    hub_rows,
    section,
    seen,
)

pytestmark = pytest.mark.slow
HUB_ID = "360802"


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[District]:
    yield from build_district(tmp_path_factory.mktemp("reconcile"), seed=4)


def repair(d: District, foreign: list[object]) -> dict[str, object]:
    """One `repair` step of the village's reconcile conversation, signed by the village's own keys
    through the node's own client code, carrying ``foreign`` changes."""
    st = Station(d.village.dir)

    async def go() -> dict[str, object]:
        async with aiohttp.ClientSession() as session:
            talk = Conversation(st, session, d.hub.url)
            return (await talk.ask(RepairAnswer.from_wire, "repair", changes=(), foreign=tuple(foreign))).to_wire()

    try:
        return asyncio.run(go())
    finally:
        st.close()


def text_of(markup: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", markup)).strip()


def hub_change(d: District, seq: int) -> tuple[int, dict[str, object]] | None:
    """(hlc, fields) of the hub's own change with this seq, if it holds one."""
    rows = hub_rows(d.hub, "SELECT hlc, fields FROM changes WHERE origin=? AND seq=?", (HUB_ID, seq))
    return (int(rows[0][0]), dict(unpack(bytes(rows[0][1])))) if rows else None  # type: ignore[call-overload]


def test_a_forged_hub_change_is_held_under_its_sender_and_released_as_a_new_hub_change(d: District) -> None:
    v = d.village
    number = str(d.accept(v)["number"])
    d.sync(v)
    d.transition(number, "under_review")
    d.sync(v)
    app_id = str(d.show(number)["id"])
    ((epoch, last),) = hub_rows(
        d.hub,
        "SELECT epoch, MAX(seq) FROM changes WHERE origin=? GROUP BY epoch ORDER BY epoch DESC LIMIT 1",
        (HUB_ID,),
    )
    claimed = int(last) + 2  # the seq of the operator's next change after the release
    st = Station(v.dir)
    try:
        base, hlc = seen(st, "application", app_id), st.clock() << 16
    finally:
        st.close()
    wire = [
        HUB_ID,
        int(epoch),
        claimed,
        hlc,
        "application",
        app_id,
        {"status": "approved", "decision": "准予许可"},
        {"status": base["status"]},
    ]

    assert repair(d, [wire]) == {"applied": 0, "held": 1, "skipped": 0}
    assert repair(d, [wire]) == {"applied": 0, "held": 0, "skipped": 1}  # held once, however often re-sent
    (row,) = held(d.hub, sender=VILLAGE, code="foreign_origin")
    assert (row.origin, row.seq, row.state) == (HUB_ID, claimed, "open")
    assert row.reason.startswith(f"由 {VILLAGE} 在对账时转交，声称来自 {HUB_ID}，无法核验来源签名")
    assert d.show(number)["status"] == "under_review"
    assert hub_change(d, claimed) is None

    # The dashboard says who sent it and that the hub's signature cannot be checked; nothing on the
    # page vouches for it as signed.
    dash = Dashboard(d.hub.url)
    dash.login()
    page = dash.get("/quarantine")
    card = section(page, row.id)
    heading = text_of(re.search(r"<h2>.*?</h2>", card, re.S).group(0))  # type: ignore[union-attr]
    assert f"{VILLAGE} 转交" in heading and heading.index("由") < heading.index(VILLAGE) < heading.index("声称来自")
    assert f'href="/stations/{HUB_ID}"' not in card, "the card links the change to the hub as its author"
    assert f"由 站点{VILLAGE}（{VILLAGE}）在对账时转交，声称来自" in text_of(card) and "签名无法核验" in card
    assert "签名有效" not in card
    assert "签名有效" not in page[: page.index('<section class="card"')], "the page vouches for every row's signature"
    # The village's own page lists what it sent, the relayed change included.
    assert f'href="/quarantine#q{row.id}"' in dash.get(f"/stations/{VILLAGE}")

    # Release: a new hub change, written by the hub under its own next seq, never the forged one.
    status, text = dash.post(f"/quarantine/{row.id}/release", {"reason": "电话核实：区局确已准予"}, page="/quarantine")
    assert status == 200 and "已放行" in text
    (after,) = held(d.hub, id=row.id)
    assert after.state == "released" and OPERATOR in after.note
    # The item needs an on-site inspection and no report is in: the release is the operator's override,
    # written with its reason as the hub's next change, and the decision follows it.
    made = int(str(last)) + 2
    assert f"新变更 {made} " in after.note
    override = hub_change(d, made - 1)
    assert override is not None and override[1]["action"] == "approve_without_inspection"
    assert "电话核实：区局确已准予" in str(override[1]["note"])
    released = hub_change(d, made)
    assert released is not None and released[1]["status"] == "approved" and released[0] != hlc
    assert hub_rows(d.hub, "SELECT COUNT(*) FROM changes WHERE hlc=?", (hlc,)) == [(0,)]
    assert d.show(number)["status"] == "approved"
    # The audit log records who released it and which hub change the release wrote.
    written = f"区局以新变更 {HUB_ID}/{epoch}/{made} 写入"
    audit = hub_rows(d.hub, "SELECT user, action, target, detail FROM dash_audit WHERE action='quarantine_release'")
    assert audit == [(OPERATOR, "quarantine_release", str(row.id), written)]
    assert re.search(
        rf"<td>{OPERATOR}</td><td>放行隔离</td>\s*<td[^>]*>{row.id}</td><td[^>]*>{written}</td>", dash.get("/audit")
    )

    # The release's decision took the seq the forgery claimed, as a new change of the hub's (its hlc is
    # not the forged one's, checked above); the operator's next command really takes effect.
    assert made == claimed
    d.transition(number, "completed")
    real = hub_change(d, made + 1)
    assert real is not None and real[1]["status"] == "completed"
    # The village that owns the file ends up with the district's outcome; the neighbour sees nothing.
    d.sync(v, d.neighbour)
    assert v.by_number()[number]["status"] == "completed"
    assert number not in d.neighbour.numbers()
