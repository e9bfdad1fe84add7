"""Each command recognises the kind of Sanji folder it is given, says what it is, and `init` never
leaves a half-made folder (issue 14 item 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import keyring
from hub.service import Hub
from node.station import Station
from replica.errors import Refused

from .processes import run_sanji


@pytest.fixture
def station_dir(tmp_path: Path) -> Path:
    Station(tmp_path / "v1", create=True).close()
    return tmp_path / "v1"


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    Hub.create(tmp_path / "hub", district="360802", name="测试区行政审批局", catalogue=None).close()
    return tmp_path / "hub"


def test_hub_status_on_a_station_folder_says_it_is_a_station(station_dir: Path) -> None:
    res = run_sanji("hub", "status", station_dir)
    assert res.code == 2
    assert "站点（node）文件夹" in res.stderr and "sanji node" in res.stderr
    assert "hub init" not in res.stderr, "never advise making a hub inside a station"


def test_hub_init_on_a_station_folder_refuses_and_adds_nothing(station_dir: Path) -> None:
    before = sorted(p.name for p in station_dir.iterdir())
    res = run_sanji("hub", "init", station_dir)
    assert res.code == 2 and "不能在这里新建区局" in res.stderr
    assert sorted(p.name for p in station_dir.iterdir()) == before
    assert not (station_dir / "hub.db").exists()


def test_node_status_on_a_hub_folder_says_it_is_a_hub(hub_dir: Path) -> None:
    res = run_sanji("node", "status", hub_dir)
    assert res.code == 2 and "区局（hub）文件夹" in res.stderr


def test_a_demo_root_points_to_its_hub(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / ".sanji-demo").write_text("made by sanji demo\n", encoding="utf-8")
    res = run_sanji("hub", "status", tmp_path / "demo")
    assert res.code == 2 and str(tmp_path / "demo" / "hub") in res.stderr


def test_a_missing_folder_is_named_with_how_to_make_one(tmp_path: Path) -> None:
    res = run_sanji("node", "status", tmp_path / "nowhere")
    assert res.code == 2 and "不存在" in res.stderr and "sanji node init" in res.stderr
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("existed", [False, True])
def test_a_hub_init_that_fails_half_way_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existed: bool
) -> None:
    folder = tmp_path / "hub"
    if existed:
        folder.mkdir()

    def broken(*args: object, **kwargs: object) -> None:
        raise Refused("the disk filled up (simulated)")

    monkeypatch.setattr(keyring, "create", broken)  # after the database and the keys are written
    with pytest.raises(Refused, match="simulated"):
        Hub.create(folder, district="360802", name="测试区行政审批局", catalogue=None)
    assert folder.exists() is existed
    assert not existed or list(folder.iterdir()) == []
