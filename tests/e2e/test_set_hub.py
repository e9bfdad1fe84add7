"""`sanji node set-hub DIR URL`: a station follows its hub to a new address, and refuses an address
where something else answers, keeping the old one (issue 14 item 10)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from node.station import Station
from tests.conftest import sqlite_only

from .conftest import Hub, Node
from .processes import run_sanji

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)


def hub_url_of(node: Node) -> str:
    st = Station(node.dir)
    try:
        return st.meta.text("hub_url")
    finally:
        st.close()


@pytest.fixture
def web_page_server() -> Iterator[str]:
    """Something that is not a Sanji hub: every GET answers 200 with an HTML page."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = "<html><body>路由器管理页面</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_same_hub_at_a_new_address_is_taken(new_village: Callable[[], Node], district_hub: Hub) -> None:
    v = new_village()
    moved = district_hub.url.replace("127.0.0.1", "localhost")  # the same hub, reached by another name
    res = run_sanji("node", "set-hub", v.dir, moved + "/")
    assert res.code == 0, res.stderr
    assert res.data["hub"] == moved and res.data["station"] == v.code
    assert hub_url_of(v) == moved
    assert run_sanji("node", "sync", v.dir).code == 0, "the station syncs at its new address"


def test_another_districts_hub_is_refused_and_the_old_address_stays(new_village: Callable[[], Node], hub: Hub) -> None:
    v = new_village()
    before = hub_url_of(v)
    hub.ensure_running()
    res = run_sanji("node", "set-hub", v.dir, hub.url)
    assert res.code == 2 and "不是本站登记的区局" in res.stderr, res.stderr
    assert hub_url_of(v) == before


@sqlite_only  # the station refuses before any hub is asked: nothing of the hub's store is involved
def test_a_web_page_is_not_a_hub(new_village: Callable[[], Node], web_page_server: str) -> None:
    v = new_village()
    before = hub_url_of(v)
    res = run_sanji("node", "set-hub", v.dir, web_page_server)
    assert res.code == 2 and "不是 Sanji 区局" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert hub_url_of(v) == before


@sqlite_only  # the station refuses before any hub is asked: nothing of the hub's store is involved
def test_an_address_nothing_answers_at_is_unreachable(new_village: Callable[[], Node], tmp_path: Path) -> None:
    v = new_village()
    before = hub_url_of(v)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run_sanji("node", "set-hub", v.dir, f"http://127.0.0.1:{port}")
    assert res.code == 3 and "地址未修改" in res.stderr
    assert hub_url_of(v) == before
