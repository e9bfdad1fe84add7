"""A proxy that keeps serving the last genuine feed page cannot freeze a station unseen (issue 21, row 3).

Before: three syncs in a row exited 0 while the hub had published a newer release, and status showed
the hub online with a fresh last_sync and no warning. Now every pull carries a nonce that the page's
signed header must answer, so the replayed page is refused, the sync exits 2, and `node status` says
"区局数据可能已停更" until a genuine answer arrives; the station reports it to the hub (dashboard) when it
reaches the real one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hub.service import BUILTIN_CATALOGUE, Hub
from tests.conftest import World

from .mitm import Proxy, run_child


def test_a_replayed_feed_page_is_refused_and_the_station_warns_until_the_feed_moves(
    make_world: Callable[..., World],
) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    hub_folder, st_folder = world.root / "hub", world.get("T1-V1").folder
    proxy = Proxy(hub_folder)
    try:
        proxy.serve(st_folder)

        code, out, err, _ = run_child("node", "sync", st_folder)
        assert code == 0, (out, err)
        _, status, _, _ = run_child("node", "status", st_folder)
        assert status["hub_time"] and status["hub_stale"] is False and status["freshness_warning"] == ""
        first_hub_time = status["hub_time"]

        # The man in the middle freezes the feed; meanwhile the district publishes release 2.
        proxy.replay = proxy.last_pull
        assert proxy.replay
        hub = Hub.open(hub_folder)
        try:
            assert hub.publish(json.loads(Path(BUILTIN_CATALOGUE).read_text(encoding="utf-8"))) == 2
        finally:
            hub.close()
        for _ in range(3):
            code, out, err, _ = run_child("node", "sync", st_folder)
            assert code == 2, (code, out, err)
            assert any("没有回应本次请求的随机数" in p for p in out["feed_problems"]), out
            assert out["catalogue_version"] == 1
        code, status, _, _ = run_child("node", "status", st_folder)
        assert status["hub_reachable"] is True and status["hub_stale"] is True
        assert "区局数据可能已停更" in status["freshness_warning"] and "最近 3 次" in status["freshness_warning"]
        assert status["hub_time"] == first_hub_time, "a replayed page is not news"
        code = run_child("node", "status", st_folder)[0]
        assert code == 0

        # The path is honest again: the release arrives and the warning goes.
        proxy.replay = None
        code, out, err, _ = run_child("node", "sync", st_folder)
        assert code == 0 and out["catalogue_version"] == 2, (code, out, err)
        _, status, _, _ = run_child("node", "status", st_folder)
        assert status["hub_stale"] is False and status["freshness_warning"] == ""
        assert status["hub_time"] > first_hub_time

        # The district saw it too: the station's first pull to reach the real hub reported the freeze,
        # and the next one clears it.
        assert "区局数据可能已停更" in _reported(hub_folder)
        assert run_child("node", "sync", st_folder)[0] == 0
        assert _reported(hub_folder) == ""
    finally:
        proxy.close()


def _reported(hub_folder: Path) -> str:
    code, out, err, _ = run_child("hub", "status", hub_folder)
    assert code == 0, err
    return str(next(s for s in out["stations"] if s["code"] == "T1-V1")["last_error"])
