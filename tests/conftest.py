"""Shared fixtures: a temporary project folder, and the CLI run the way a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with its own registry file, so tests never touch /tmp/tao-inf-ms-state.json."""
    folder = tmp_path / "proj"
    folder.mkdir()
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    monkeypatch.delenv("TAOPLAN_STATE_DIR", raising=False)
    return folder


def write(folder: Path, text: str, name: str = "services.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def taoplan(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600, stdin: str | None = None
) -> Run:
    """Run the real console script in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "taoplan", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)
