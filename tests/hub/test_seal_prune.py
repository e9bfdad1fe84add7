"""`sanji hub prune-seal-keys` (issue 16, ``hub/seal_prune.py``): retired sealing keys go only when
nothing the hub holds is still sealed to them; otherwise it refuses (``seal_key_in_use``), naming how
many held rows need which key and what to do, and removes none. It says what it removed, what it kept
and why, and never touches the current key. Applicants are generated."""

from __future__ import annotations

import json

import pytest

from hub import keyring, quarantine_review, reconcile, seal_keys, seal_prune
from node import commands
from node.reconcile import SCOPE_SQL, repair_wire
from node.station import Station
from protocol.keys import key_id, public_bytes
from protocol.reconciliation import ReconcileRequest
from replica.errors import Refused
from replica.ids import iso_from_ms
from sanji.cli import main as sanji
from tests.conftest import World

TOWNSHIP, VILLAGE = "360802-T01", "360802-T01-05"
ITEM = "360802-0009"
DAY = 86_400_000

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


def _retired(world: World) -> list[str]:
    return [key_id(public_bytes(k)) for k in seal_keys.retired(world.hub.folder)]


def _rotate(world: World, days_later: int = 0) -> str:
    """Rotate the sealing key ``days_later`` days on; returns the key retired."""
    world.clock.advance(days_later * DAY)
    old = world.hub.keys.seal_key_id
    keyring.rotate_key(world.hub, seal=True)
    return old


def test_a_retired_key_nothing_needs_is_removed_and_the_rest_kept_with_why(world: World) -> None:
    first = _rotate(world)
    second = _rotate(world, days_later=10)
    current = world.hub.keys.seal_key_id
    dry = seal_prune.prune(world.hub, key_id=first, dry_run=True)
    assert dry["would_remove"] == [first] and dry["removed"] == [] and _retired(world) == [second, first]
    out = seal_prune.prune(world.hub, key_id=first)
    assert out["removed"] == [first] and out["kept"] == [{"key_id": second, "why": "未指定 (not named)"}]
    assert "驳回" in str(out["warning"])  # what the hub cannot see at the stations, said every time
    assert _retired(world) == [second]
    assert (world.hub.folder / seal_keys.RETIRED_FILE).stat().st_mode & 0o777 == 0o600
    assert seal_keys.sealing_keys(world.hub)[0][0] == current  # the current key is untouched
    for wrong, code in ((current, "seal_key_current"), (first, "seal_key_unknown")):
        with pytest.raises(Refused) as refused:
            seal_prune.prune(world.hub, key_id=wrong)
        assert refused.value.code == code


def test_before_a_date_removes_the_keys_retired_before_it_and_keeps_undated_ones(world: World) -> None:
    first = _rotate(world)
    second = _rotate(world, days_later=30)
    third = _rotate(world, days_later=30)
    path = world.hub.folder / seal_keys.RETIRED_FILE
    seeds, when = seal_keys._read_file(path)
    seal_keys._write(path, seeds, {k: v for k, v in when.items() if k != second})  # retired by an older version
    day = iso_from_ms(world.clock() - DAY)[:10]  # after the first two rotations, before the third
    out = seal_prune.prune(world.hub, before=day)
    assert out["removed"] == [first]
    kept = {k["key_id"]: k["why"] for k in out["kept"]}  # type: ignore[attr-defined]
    assert set(kept) == {second, third} and "--key-id" in kept[second] and day in kept[third]
    with pytest.raises(Refused) as refused:
        seal_prune.prune(world.hub, before="31/01/2026")
    assert refused.value.code == "bad_date"


def test_a_key_a_held_change_is_still_sealed_to_is_refused_until_the_change_is_settled(
    world: World, signed_in_pair: tuple[Station, Station]
) -> None:
    township, village = signed_in_pair
    app = commands.accept(village, world.application(ITEM, st=village, deferred=["银行卡"]), author="zhangsan")
    world.push(village)
    world.pull(township)
    rows = township.conn.execute(SCOPE_SQL + " AND c.origin=? AND c.rid=?", (VILLAGE, str(app["id"]))).fetchall()
    sealed_to = world.hub.keys.seal_key_id
    # The township re-sends the village's change: held, its seal (to the current key) intact.
    req = ReconcileRequest("repair", 0, changes=(), foreign=tuple(repair_wire(r) for r in rows))
    assert reconcile.repair(world.hub, TOWNSHIP, req).held == 1
    assert _rotate(world) == sealed_to
    assert seal_prune.needs(world.hub) == {sealed_to: (1, 0)}
    with pytest.raises(Refused) as refused:
        seal_prune.prune(world.hub, key_id=sealed_to)
    assert refused.value.code == "seal_key_in_use"
    assert "1 条暂存待核的变更" in str(refused.value) and "放行或驳回" in str(refused.value)
    assert _retired(world) == [sealed_to]  # nothing removed
    (held,) = quarantine_review.quarantine_rows(world.hub)
    quarantine_review.reject(world.hub, int(held["id"]), by="审核员", reason="已由村站重新上传")
    assert seal_prune.prune(world.hub, key_id=sealed_to)["removed"] == [sealed_to]


def test_a_held_whole_batch_names_the_key_its_body_is_sealed_to(
    world: World, signed_in_pair: tuple[Station, Station]
) -> None:
    _township, village = signed_in_pair
    commands.accept(village, world.application(ITEM, st=village, deferred=["银行卡"]), author="zhangsan")
    (frame,) = world.frames(village)
    assert seal_prune.sealed_to(True, frame) == world.hub.keys.seal_key_id
    assert seal_prune.sealed_to(True, b"not a frame") is None


def test_prune_seal_keys_on_the_command_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    first = _rotate(world)
    folder = str(world.hub.folder)
    assert sanji(["hub", "prune-seal-keys", folder, "--key-id", first, "--dry-run"]) == 0
    assert f"将删除（试运行，未删除）：{first}" in capsys.readouterr().out
    assert sanji(["hub", "prune-seal-keys", folder, "--key-id", first, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == [first]
    assert sanji(["hub", "prune-seal-keys", folder, "--key-id", first, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["code"] == "seal_key_unknown"
    with pytest.raises(SystemExit):  # one of --before and --key-id is required
        sanji(["hub", "prune-seal-keys", folder])
