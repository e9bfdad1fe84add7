"""protocol/ and sync/ must stay pure: the simulator and the property tests rely on it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "sqlite3",
    "sqlite_utils",
    "aiohttp",
    "asyncio",
    "apscheduler",
    "socket",
    "time",
    "random",
    "os",
    "subprocess",
    "threading",
    "datetime_now",
    "secrets",
    "uuid",
    "pathlib",
    "io",
    "shutil",
    "tempfile",
    "http",
    "urllib",
    "requests",
    "node",
    "hub",
    "sanji",
    "multiprocessing",
    "signal",
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_pure_packages_import_no_io_clock_or_randomness() -> None:
    offenders = []
    files = sorted((ROOT / "protocol").rglob("*.py")) + sorted((ROOT / "sync").rglob("*.py"))
    assert files, "protocol/ and sync/ should contain modules"
    for path in files:
        bad = imported_roots(path) & FORBIDDEN
        if bad:
            offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert not offenders, "impure imports: " + "; ".join(offenders)


def test_protocol_does_not_import_sync() -> None:
    for path in sorted((ROOT / "protocol").rglob("*.py")):
        assert "sync" not in imported_roots(path), f"{path} imports sync/: protocol must stay below it"


def test_node_and_hub_never_import_each_other() -> None:
    for pkg, other in (("node", "hub"), ("hub", "node")):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            assert other not in imported_roots(path), f"{path} imports {other}/"


def test_checker_catches_an_impure_module(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom os import path\n", encoding="utf-8")
    assert imported_roots(bad) & FORBIDDEN == {"time", "os"}
