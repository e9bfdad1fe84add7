"""`hub serve` and `node serve` on a port another program holds: one clear line, exit 2, and no
"serving on" first (issue 14 item 17)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hub.service import Hub
from node.station import Station

from .processes import run_sanji


@pytest.fixture
def taken_port() -> socket.socket:
    holder = socket.create_server(("127.0.0.1", 0))
    yield holder
    holder.close()


def test_hub_serve_on_a_taken_port_refuses_in_one_line(tmp_path: Path, taken_port: socket.socket) -> None:
    Hub.create(tmp_path / "hub", district="360802", name="测试区行政审批局", catalogue=None).close()
    port = taken_port.getsockname()[1]
    res = run_sanji("hub", "serve", tmp_path / "hub", "--host", "127.0.0.1", "--port", port, timeout=60)
    assert res.code == 2, res.stderr
    assert f"端口 {port} 已被占用" in res.stderr and "--port" in res.stderr
    assert "Traceback" not in res.stderr and "OSError" not in res.stderr
    assert not (tmp_path / "hub" / "hub.pid").exists(), "a hub that never served leaves no pid file"


def test_node_serve_on_a_taken_port_refuses_in_one_line(tmp_path: Path, taken_port: socket.socket) -> None:
    Station(tmp_path / "v1", create=True).close()
    port = taken_port.getsockname()[1]
    res = run_sanji("node", "serve", tmp_path / "v1", "--port", port, timeout=60)
    assert res.code == 2, res.stderr
    assert f"端口 {port} 已被占用" in res.stderr
    assert "Traceback" not in res.stderr
