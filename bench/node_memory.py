"""What an idle station server costs in memory, and where it goes.

``sanji node serve`` for an enrolled village station (its hub up, no applications, no staff account),
read from ``/proc/<pid>/status`` (VmRSS, RssAnon, RssFile, Threads) and ``/proc/<pid>/smaps_rollup``
(Pss) 5 s after its home page first answered; then again after one visit to the accept picker, whose
pinyin initials are worked out in a child process (node/ui/initials.py), to show the picker does not
bring pypinyin's table into the server.

Twice: as this environment runs it, and as a station installed without the test extras runs it. The
test extras bring numpy (tests read QR codes with it), and sqlite-utils imports numpy whenever it is
importable, only to map numpy's scalar types to column types; ``pip install .`` has no numpy, which the
second run stands in for by making numpy and pandas unimportable in the server process.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import urllib.request
from pathlib import Path

from bench import common

IDLE_SECONDS = 5.0
HOW = (
    "VmRSS of `sanji node serve` (/proc/<pid>/status), 5 s after its home page first answered: an enrolled"
    " village station, its hub up, no applications, no staff account"
)
# `sanji` with numpy and pandas unimportable: what a station installed without the test extras runs.
WITHOUT_NUMPY = (
    "import sys; sys.modules.update(numpy=None, pandas=None); from sanji.cli import main; sys.exit(main(sys.argv[1:]))"
)


def reading(pid: int) -> dict[str, float]:
    """Memory figures of one process in MB (Threads as a count)."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)
            elif key == "Threads":
                fields[key] = int(value)
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                fields["Pss"] = round(int(line.split()[1]) / 1024, 1)
    return fields


def _measure(argv: list[str], folder: Path, log_path: Path) -> dict[str, object]:
    port = common.free_port()
    node = common.serve_command(
        [*argv, "node", "serve", str(folder), "--port", str(port)], port=port, log_path=log_path, probe="/"
    )
    try:
        time.sleep(IDLE_SECONDS)
        idle = reading(node.pid)
        # The first picker page waits for the child that works out the initials; the second does not.
        pages = []
        for _ in range(2):
            t0 = time.perf_counter()
            with urllib.request.urlopen(node.url + "/accept?q=zdshbz", timeout=60) as resp:
                found = "最低生活保障" in resp.read().decode("utf-8")
            pages.append(common.ms(time.perf_counter() - t0))
        time.sleep(1.0)
        picked = reading(node.pid)
    finally:
        node.stop()
    return {"idle": idle, "after_picker": picked, "picker_found_by_initials": found, "picker_first_then_next_ms": pages}


def run() -> dict[str, object]:
    with common.workdir("node-memory") as work, common.one_village(work):
        common.log("the idle station server, as this environment runs it")
        here = _measure(common.sanji_command(), work / "node", work / "serve.log")
        numpy_here = importlib.util.find_spec("numpy") is not None
        common.log("again with numpy and pandas unimportable, as a station installed without test extras")
        bare = _measure([sys.executable, "-c", WITHOUT_NUMPY], work / "node", work / "serve-bare.log")
    idle, bare_idle = here["idle"], bare["idle"]
    assert isinstance(idle, dict) and isinstance(bare_idle, dict)
    return {
        "benchmark": "node_memory",
        "how": HOW,
        "numpy_importable_here": numpy_here,
        "idle_rss_mb": idle["VmRSS"],
        "idle": idle,
        "after_picker": here["after_picker"],
        "picker_found_by_initials": here["picker_found_by_initials"],
        "picker_first_then_next_ms": here["picker_first_then_next_ms"],
        "station_install_idle_rss_mb": bare_idle["VmRSS"],
        "station_install_idle": bare_idle,
        "station_install_after_picker": bare["after_picker"],
    }


def main(argv: list[str]) -> int:
    p = common.parser("node_memory", __doc__ or "")
    args = p.parse_args(argv)
    common.emit(run(), args.json)
    return 0
