"""`sanji hub quarantine`: what the hub holds for review, with the Chinese reason and a stable code.

A village with its real keys writes moves its own commands refuse (``Station.write_unchecked``, what
modified software does) next to an honest one; the listing names each held change, its code and its
reason, and never shows an applicant's ID number or phone in full.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from sanji.cli import main
from sync.identity import mask_id
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

TOWNSHIP_ITEM = "360802-0010"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_held_changes_are_listed_with_code_and_reason(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    w = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v = w.get("T1-V1")
    made = w.accept(v, TOWNSHIP_ITEM)
    w.push(v)
    app_id = str(made["id"])
    seen = v.records.load("application", app_id)["status"][0]
    with v.transaction():
        v.write_unchecked("application", app_id, {"status": "completed"}, {"status": seen})  # a promised item
        v.write_unchecked("application", app_id, {"decision": "准予"}, {})
    honest = w.accept(v, TOWNSHIP_ITEM)
    acks = w.push(v)
    assert [(a.applied, a.quarantined) for a in acks] == [(1, 2)]
    hub_dir = str(w.hub.folder)

    code, out = _cli(capsys, "hub", "quarantine", hub_dir, "--json")
    assert code == 0
    rows = json.loads(out)["quarantined"]
    assert [(r["origin"], r["seq"], r["code"], r["state"]) for r in rows] == [
        ("T1-V1", 3, "not_authorised", "open"),
        ("T1-V1", 2, "illegal_move", "open"),
    ]
    assert "只有即办件可以受理后直接办结" in rows[1]["reason"]
    assert all(not r["relayed"] and r["sender"] == "T1-V1" for r in rows)
    assert w.hub.records.values("application", str(honest["id"]))["status"] == "accepted"

    code, text = _cli(capsys, "hub", "quarantine", hub_dir)
    assert code == 0 and "illegal_move" in text and "T1-V1 第 1 代 第 2 号" in text

    code, out = _cli(capsys, "hub", "quarantine", hub_dir, "--station", "T1", "--json")
    assert json.loads(out) == {"quarantined": []}


def test_a_held_creation_is_shown_masked(make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]) -> None:
    w = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v = w.get("T1-V1")
    app = w.application("360802-0042", st=v)  # district-only: a village may not accept it
    fields = {
        "number": "T1-V1-20260302-00009",
        "station": "T1-V1",
        "item": app.item,
        "catalogue_version": 1,
        "kind": "promised",
        "applicant_name": app.name,
        "applicant_id": app.id_number,
        "applicant_phone": app.phone,
        "address": "",
        "accepted_at": "2026-03-02T09:00:00+08:00",
        "due_date": "2026-03-30",
        "status": "accepted",
    }
    with v.transaction():
        v.write_unchecked("application", "forged-0001", fields, {})
    w.push(v)
    code, out = _cli(capsys, "hub", "quarantine", str(w.hub.folder), "--json")
    assert code == 0
    (row,) = json.loads(out)["quarantined"]
    assert row["code"] == "tier_not_allowed"
    assert row["content"]["fields"]["applicant_id"] == mask_id(app.id_number) != app.id_number
    assert app.id_number not in out and app.phone not in out
