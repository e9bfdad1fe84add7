"""What `sanji node serve` imports before it serves (docs/benchmarks.md, "Station server idle memory"):
not pypinyin's 55 MB table (the picker's initials come from a child process, node/ui/initials.py), not
the hub's code, not the demo. A fresh interpreter runs the real `sanji` entry point down to the server's
app, with only the final serve_forever replaced, and lists what it loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import node.server

seen = []

def serve(folder, *, port, interval, nightly_at, relay, relay_url=None):
    node.server.create_app(folder, interval, nightly_at)  # the app, its routes and templates' environment
    seen.extend(sorted(sys.modules))

node.server.serve = serve
from sanji.cli import main

code = main(["node", "serve", sys.argv[1], "--port", "1"])
print(json.dumps({"code": code, "modules": seen}))
"""


def test_the_station_server_imports_neither_pypinyin_nor_the_hub(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "station")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["code"] == 0, done.stderr
    modules = set(out["modules"])
    assert "node.ui.accept" in modules and "aiohttp.web" in modules  # it did get as far as the app
    heavy = sorted(m for m in modules if m.split(".")[0] in ("pypinyin", "hub") or m == "sanji.demo")
    assert heavy == []
