"""Fail on an import cycle between the project's modules, on an import against the packages' one
direction (docs/architecture.md), on a module past the size limit, or on a hub module that runs SQL
outside the hub's store (``tools/store_boundary.py``).

Every import counts, at module level or inside a function: a deferred import hides a cycle from
Python, not from the reader. Run by `make test` (see the Makefile's `lint` target).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling modules
import store_boundary

PACKAGES = ("protocol", "sync", "replica", "present", "node", "hub", "sanji")
# A package imports only packages of a lower layer (or its own): node/ and hub/ share one and never
# import each other.
LAYER = {"protocol": 0, "sync": 1, "replica": 2, "present": 3, "node": 4, "hub": 4, "sanji": 5}
MAX_LINES = 400


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports. `from pkg import mod` names the module, not the package."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # The nearest enclosing project module: `hub.dashboard.views.render` → `hub.dashboard.views`.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    files = {module_name(root, p): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}
    known = set(files)
    # A package's __init__ is not an edge of its own modules: `import hub.x` runs hub/__init__ first,
    # but that is Python's loading order, not a dependency the code expresses.
    graph = {
        name: imports_of(name, path, known) - {p for p in known if name.startswith(p + ".")}
        for name, path in files.items()
    }
    problems = [f"import cycle: {' ↔ '.join(c)}" for c in cycles(graph)]
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            own, other = name.split(".")[0], target.split(".")[0]
            if own != other and LAYER[other] >= LAYER[own]:
                problems.append(f"{name} imports {target}: {own}/ may import only packages below it")
    for _name, path in sorted(files.items()):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            problems.append(
                f"{path.relative_to(root)}: {lines} lines (the limit is {MAX_LINES}; split it by what it owns)"
            )
    problems += store_boundary.problems(root)
    for problem in problems:
        print(problem)
    print(f"{len(files)} modules checked: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
