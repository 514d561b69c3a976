"""End-to-end fixtures: a real Docker engine and the locally built TAO test image, started on demand."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

TEST_IMAGE = "localhost/taoplan/tao-test:7.3.0"
LLM_IMAGE = os.environ.get("TAOPLAN_LLM_IMAGE", "localhost/taoplan/llamacpp-test:1")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Start dockerd if none answers and build the test image if it is missing or stale (both idempotent)."""
    for script in ("ensure-dockerd.sh", "build-test-image.sh"):
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / script)], capture_output=True, text=True, timeout=1800
        )
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="session")
def llm_image(docker_engine: None) -> str:
    """The llama.cpp test image (testimage-llm/), built when missing or stale (idempotent)."""
    script = str(ROOT / "scripts" / "build-llm-image.sh")
    proc = subprocess.run(["bash", script], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"build-llm-image.sh failed:\n{proc.stdout}\n{proc.stderr}"
    return LLM_IMAGE


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def labelled(project: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=taoplan.project={project}").split()


@pytest.fixture
def dproject(docker_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder with a unique project name and registry; its containers are removed afterwards."""
    folder = tmp_path / f"p{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    monkeypatch.delenv("TAOPLAN_STATE_DIR", raising=False)
    yield folder
    leftovers = labelled(folder.name)
    if leftovers:
        subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True)


def services_yaml(project: str, services: dict[str, dict[str, object]], **platform: object) -> str:
    """A services file for the test image with gpus: none."""
    import json

    settings = {"gpus": "none", "shm_size": "64m", **platform}
    lines = [
        "version: 1",
        f"project: {project}",
        "defaults:",
        f"  image: {TEST_IMAGE}",
        "  readiness: {timeout: 120}",
        "platforms:",
        f"  local-docker: {json.dumps(settings)}",
        "services:",
    ]
    for name, fields in services.items():
        lines.append(f"  {name}: {json.dumps(fields)}")
    return "\n".join(lines) + "\n"


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
