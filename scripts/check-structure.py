#!/usr/bin/env python3
"""The package's shape, checked: no run-time import circle, no module over 500 lines, at most 14
top-level entries in taoplan/. Prints each problem on one line and exits 1 if there is any.

    python3 scripts/check-structure.py

Import edges come from grimp (import-linter's graph), without ``if TYPE_CHECKING:`` imports, which
never run. A circle is a strongly connected group of two or more modules; a package's __init__
importing its own submodules is an edge like any other.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "taoplan"
MAX_LINES = 500
MAX_TOP_LEVEL = 14


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of size > 1 (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def main() -> int:
    sys.path.insert(0, str(ROOT))
    problems: list[str] = []
    graph = grimp.build_graph(PACKAGE, exclude_type_checking_imports=True)
    for group in circles(graph):
        problems.append("import circle: " + " -> ".join(group))
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            problems.append(f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_LINES})")
    top = sorted(p.name for p in (ROOT / PACKAGE).iterdir() if p.name != "__pycache__")
    if len(top) > MAX_TOP_LEVEL:
        problems.append(
            f"{PACKAGE}/ has {len(top)} top-level entries (at most {MAX_TOP_LEVEL}): {', '.join(top)}"
        )
    for line in problems:
        print(line)
    modules = len(graph.modules)
    if not problems:
        print(
            f"check-structure: {modules} modules, no import circle, none over {MAX_LINES} lines, {len(top)} top-level entries"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
