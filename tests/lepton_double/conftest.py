"""Fixtures for the Lepton double: a Docker engine with the TAO test image, and a double per test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tests.lepton_double import Double, start_double

TEST_IMAGE = "localhost/taoplan/tao-test:7.3.0"


@pytest.fixture(scope="session")
def lepton_docker() -> None:
    """Start dockerd if none answers and build the test image if missing or stale (both idempotent)."""
    for script in ("ensure-dockerd.sh", "build-test-image.sh"):
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / script)], capture_output=True, text=True, timeout=1800
        )
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture
def lepton(lepton_docker: None) -> Iterator[Double]:
    """A fresh double (own port, workspace token, node group of 8 GPUs); its containers go afterwards."""
    double = start_double(workspace_id="wstest01")
    try:
        yield double
    finally:
        double.stop()
