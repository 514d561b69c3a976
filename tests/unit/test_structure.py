"""The package keeps its shape: layers, no run-time import circle, small modules (scripts/check-structure.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-structure.py"


def _load():
    spec = importlib.util.spec_from_file_location("check_structure", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_circle_of_three_modules_is_found_and_a_chain_is_not() -> None:
    graph = grimp.ImportGraph()
    for name in ("p.a", "p.b", "p.c", "p.d"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    graph.add_import(importer="p.c", imported="p.d")
    assert _load().circles(graph) == [["p.a", "p.b", "p.c"]]


def test_the_package_has_no_circle_no_big_module_and_few_top_level_entries() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no import circle" in proc.stdout
