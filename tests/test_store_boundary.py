"""The hub's storage boundary (``tools/store_boundary.py``): no hub module outside ``hub/store/`` runs
SQL, imports ``sqlite3`` or takes the store's connection, but those still named as pending."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("store_boundary", ROOT / "tools" / "store_boundary.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hub_keeps_to_the_boundary_but_for_the_files_pending() -> None:
    assert _tool().problems(ROOT) == []


def test_each_way_of_crossing_is_caught() -> None:
    breaches = _tool().breaches
    assert breaches("import sqlite3") == ["<module>:1: imports sqlite3"]
    assert breaches("from sqlite3 import Connection") == ["<module>:1: imports from sqlite3"]
    assert breaches("def f(c):\n    c.execute('SELECT 1')") == ["<module>:2: calls .execute("]
    assert breaches("x.executemany('', [])") == ["<module>:1: calls .executemany("]
    assert breaches("hub.store.conn") == ["<module>:1: takes the store's .conn"]
    assert breaches("store.db") == ["<module>:1: takes the store's .db"]
    # What the store's callers do write is fine: named methods, and other things called conn or execute.
    assert breaches("hub.store.open_conflicts()\nrunner.conn\nexecute(plan)") == []


def test_a_pending_file_that_keeps_the_rule_must_leave_the_list(tmp_path: Path) -> None:
    tool = _tool()
    (tmp_path / "hub" / "store").mkdir(parents=True)
    (tmp_path / "hub" / "store" / "base.py").write_text("import sqlite3\n")  # inside: allowed
    (tmp_path / "hub" / "ingest.py").write_text("hub.store.conn.execute('SELECT 1')\n")
    # The real list is empty now; a file once named there that keeps the rule must be struck off.
    tool.PENDING = frozenset({"hub/restore.py"})
    (tmp_path / "hub" / "restore.py").write_text("hub.store.open_conflicts()\n")
    found = tool.problems(tmp_path)
    assert any(p.startswith("hub/ingest.py:1: calls .execute(") for p in found)
    assert any(p.startswith("hub/ingest.py:1: takes the store's .conn") for p in found)
    assert any(p.startswith("hub/restore.py: keeps to the storage boundary now") for p in found)
    assert not any(p.startswith("hub/store/") for p in found)
