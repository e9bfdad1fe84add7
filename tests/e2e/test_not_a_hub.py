"""A hub address where something else answers (a router's page, any web server) is said in those words:
sync and init refuse with a clear reason, never a decoding error or a traceback (issue 14 item 18)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from node.station import Station
from tests.applicants import People

from .conftest import Hub, Node
from .processes import run_sanji


@pytest.fixture
def web_page() -> Iterator[str]:
    class Page(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = "<html><body>欢迎使用路由器</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_sync_against_a_web_page_says_it_is_not_a_hub(
    new_village: Callable[[], Node], web_page: str, people: People
) -> None:
    v = new_village()
    v.accept(people)
    st = Station(v.dir)
    with st.transaction():
        st.meta.set("hub_url", web_page)  # as if the hub's address now led somewhere else
    st.close()
    res = run_sanji("node", "sync", v.dir)
    assert res.code == 2, res.stderr
    assert "不是 Sanji 区局" in res.stderr and "text/html" in res.stderr, res.stderr
    assert "trailing bytes" not in res.stderr and "Traceback" not in res.stderr
    assert res.data["error"] == "not_a_hub"
    assert v.status()["pending"] == 1, "nothing lost"


def test_init_against_a_web_page_says_it_is_not_a_hub(district_hub: Hub, web_page: str, tmp_path: Path) -> None:
    token = district_hub.enroll("360802-T01-98", tier="village", parent="360802-T01")
    res = run_sanji("node", "init", tmp_path / "v", "--hub", web_page, "--token", token)
    assert res.code == 2, res.stderr
    assert "不是 Sanji 区局" in res.stderr and "Traceback" not in res.stderr and "AttributeError" not in res.stderr
    assert not (tmp_path / "v").exists(), "a failed init leaves nothing half-made"
