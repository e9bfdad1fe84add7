"""`node restore` stamps what it re-issues with the station's clock, which a test (or the simulator) can
inject as it does into ``Station``: found by the fault simulator, whose restored stations stamped their
re-issued changes with the machine's wall clock, months past their own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from node import epoch
from node.station import Station
from sync.hlc import wall_ms
from tests.conftest import FakeClock, World

DISTRICT_ITEM = "360802-0004"


def test_restore_stamps_re_issued_changes_with_the_clock_it_is_given(
    make_world: Callable[..., World], clock: FakeClock, tmp_path: Path
) -> None:
    world = make_world(("T1", "township", ""))
    t1 = world.get("T1")
    world.accept(t1, DISTRICT_ITEM)  # never batched: the restore re-issues it under the new epoch
    backup = tmp_path / "t1.db"
    epoch.backup(t1, backup)
    folder = t1.folder
    t1.close()
    world.stations.remove(t1)
    clock.advance(60_000)
    out = epoch.restore(folder, backup, clock=clock)
    assert out["epoch"] == 2 and out["reissued"] == 1
    st = Station(folder, clock=clock)
    try:
        assert wall_ms(st.meta.int("hlc")) <= clock()
    finally:
        st.close()
