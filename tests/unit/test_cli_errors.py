"""Errors a user meets before anything changes: one line, exit 1, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import taoplan, write

FILE = """
version: 1
services:
  one: {network_arch: cosmos-rl, model_path: /m}
"""


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:1", "unix:///nonexistent/docker.sock"])
def test_unreachable_docker_is_one_clear_line(project: Path, host: str) -> None:
    write(project, FILE)
    for command in (["plan"], ["apply", "--auto-approve"], ["status"]):
        run = taoplan(*command, cwd=project, env={"DOCKER_HOST": host})
        assert run.code == 1, run.text
        assert run.err.count("\n") == 1 and "Traceback" not in run.err
        assert run.err.startswith(f"Error: local-docker: cannot reach the Docker daemon at {host}: ")
    assert not (project / ".taoplan" / "state.json").exists()
