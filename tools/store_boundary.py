"""The hub's storage boundary (issue 15): every SQL statement of the hub lives behind ``hub/store/``.

A hub module outside the store must not import ``sqlite3``, call ``.execute(`` (or ``executemany``,
``executescript``) on anything, nor reach for the store's connection (``store.conn``, ``store.db``).
``tools/check_imports.py`` runs :func:`problems`; ``tests/test_store_boundary.py`` checks the rule
itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

# The store, and the schema it applies (migrations are DDL: the store's own, kept in hub/schema.py), and
# the store's read side: the read model (hub/reads/) runs the dashboard's and metrics' queries on
# read-only connections of its own, in worker threads, and the operators' session writes
# (hub/reads/operator_store.py) inside the caller's transaction.
INSIDE = ("hub/store/", "hub/schema.py", "hub/reads/")

# Files still pending. The list can only shrink: a file named here that no longer breaks the rule is
# itself a problem, so whoever moves its SQL also strikes it off. Empty since the SQLite file
# operations (integrity check, backup, restore's probe) moved into hub/store/sqlite_files.py.
PENDING: frozenset[str] = frozenset()

_CALLS = frozenset({"execute", "executemany", "executescript"})
_HANDLES = frozenset({"conn", "db"})


def _store_handle(node: ast.Attribute) -> bool:
    """``x.store.conn`` / ``store.db``: the store's connection taken from outside it."""
    inner = node.value
    named = inner.attr if isinstance(inner, ast.Attribute) else inner.id if isinstance(inner, ast.Name) else ""
    return node.attr in _HANDLES and named == "store"


def breaches(source: str, path: str = "<module>") -> list[str]:
    """What in one module's source crosses the boundary, one line each."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlite3" for a in node.names):
            found.append(f"{path}:{node.lineno}: imports sqlite3")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlite3":
            found.append(f"{path}:{node.lineno}: imports from sqlite3")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CALLS:
            found.append(f"{path}:{node.lineno}: calls .{node.func.attr}(")
        elif isinstance(node, ast.Attribute) and _store_handle(node):
            found.append(f"{path}:{node.lineno}: takes the store's .{node.attr}")
    return found


def problems(root: Path) -> list[str]:
    out: list[str] = []
    for path in sorted((root / "hub").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(INSIDE):
            continue
        found = breaches(path.read_text(encoding="utf-8"), rel)
        if found and rel not in PENDING:
            out += [f"{line} (hub SQL belongs behind hub/store/: see tools/store_boundary.py)" for line in found]
        elif not found and rel in PENDING:
            out.append(f"{rel}: keeps to the storage boundary now; strike it off PENDING in tools/store_boundary.py")
    out += [f"{rel}: named in PENDING but missing" for rel in sorted(PENDING) if not (root / rel).exists()]
    return out
