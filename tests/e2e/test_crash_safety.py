"""Crash safety, interrupts and locking, with real processes on a real Docker engine.

TAOPLAN_FAULT=<step> makes taoplan SIGKILL itself at that step boundary (tests only). After every
crash the state must parse, the next plan must show every stray workload, and the next apply must
converge with exactly one container per service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import taoplan
from tests.e2e.conftest import docker, labelled, services_yaml

pytestmark = pytest.mark.docker

BEFORE = {
    "fixed": {
        "network_arch": "cosmos-rl",
        "model_path": "/models/fixed-v1",
        "host_port": 18950,
    },  # replace: destroy first
    "rolling": {"network_arch": "cosmos-rl", "model_path": "/models/rolling-v1"},  # replace: create first
    "leaving": {"network_arch": "cosmos-rl", "model_path": "/models/leaving"},  # deleted
}
AFTER = {
    "fixed": {**BEFORE["fixed"], "model_path": "/models/fixed-v2"},
    "rolling": {**BEFORE["rolling"], "model_path": "/models/rolling-v2"},
    "arriving": {"network_arch": "tao-dataservices", "model_path": "hf_model://org/arriving"},  # created
}
APPLY_FAULTS = [
    "after-intent",
    "after-stop-old",
    "after-record-creating",
    "after-start",
    "after-registry-add",
    "before-record-ready",
    "delete-after-intent",
    "delete-after-stop",
]


def write(project: Path, services: dict[str, dict[str, object]]) -> None:
    (project / "services.yaml").write_text(services_yaml(project.name, services))


def state_of(project: Path) -> dict[str, object]:
    return json.loads((project / ".taoplan" / "state.json").read_text())


def assert_converged(project: Path, services: dict[str, dict[str, object]]) -> None:
    state = state_of(project)
    recorded = state["services"]
    assert isinstance(recorded, dict) and set(recorded) == set(services)
    assert state["retiring"] == {}, "a rollout left a workload behind"
    jobs = sorted(r["job_id"] for r in recorded.values())
    assert sorted(labelled(project.name)) != [] and len(labelled(project.name)) == len(services)
    names = docker(
        "ps", "-a", "--filter", f"label=taoplan.project={project.name}", "--format", "{{.Names}}"
    ).split()
    assert sorted(names) == jobs, "exactly one container per service, each known to state"
    assert all(r["status"] == "ready" for r in recorded.values())
    registry = json.loads((project.parent / "registry.json").read_text())
    assert sorted(k for k in registry if k != "latest") == jobs


@pytest.mark.parametrize("fault", APPLY_FAULTS)
def test_kill_at_every_step_boundary_then_apply_converges(dproject: Path, fault: str) -> None:
    write(dproject, BEFORE)
    assert taoplan("apply", "--auto-approve", cwd=dproject).code == 0
    write(dproject, AFTER)

    crashed = taoplan("apply", "--auto-approve", cwd=dproject, env={"TAOPLAN_FAULT": fault})
    assert crashed.code == -signal.SIGKILL, crashed.text

    plan = taoplan("plan", cwd=dproject)
    assert plan.code == 0, plan.text  # state.json parses and the world is understood
    state = state_of(dproject)
    recorded_jobs = {r["job_id"] for r in [*state["services"].values(), *state["retiring"].values()]}  # type: ignore[union-attr]
    for name in labelled(dproject.name):
        container_job = docker(
            "inspect", "--format", '{{index .Config.Labels "taoplan.job-id"}}', name
        ).strip()
        assert container_job in recorded_jobs or container_job in plan.out, (
            f"{container_job} is invisible to plan"
        )

    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text
    assert_converged(dproject, AFTER)
    assert taoplan("plan", "--detailed-exitcode", cwd=dproject).code == 0


@pytest.mark.parametrize("fault", ["delete-after-intent", "delete-after-stop"])
def test_kill_during_destroy_then_destroy_finishes(dproject: Path, fault: str) -> None:
    write(dproject, BEFORE)
    assert taoplan("apply", "--auto-approve", cwd=dproject).code == 0
    assert (
        taoplan("destroy", "--auto-approve", cwd=dproject, env={"TAOPLAN_FAULT": fault}).code
        == -signal.SIGKILL
    )
    again = taoplan("destroy", "--auto-approve", cwd=dproject)
    assert again.code == 0, again.text
    assert labelled(dproject.name) == []
    assert state_of(dproject)["services"] == {}


def start(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "taoplan", *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def wait_for(proc: subprocess.Popen[str], needle: str) -> str:
    """Read stderr until ``needle`` shows up (bounded by the process's own lifetime)."""
    assert proc.stderr is not None
    seen = ""
    for line in proc.stderr:
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared:\n{seen}")


def test_ctrl_c_stops_waiting_and_leaves_started_services_recorded(dproject: Path) -> None:
    write(
        dproject,
        {"slow": {"network_arch": "cosmos-rl", "model_path": "/m", "env": {"TAO_FAKE_LOAD_SECONDS": "60"}}},
    )
    proc = start(dproject, "apply", "--auto-approve")
    wait_for(proc, "model_loading")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err
    record = state_of(dproject)["services"]["slow"]  # type: ignore[index]
    assert record["status"] == "starting"
    assert docker("inspect", "--format", "{{.State.Status}}", record["job_id"]).strip() == "running"
    plan = taoplan("plan", cwd=dproject)
    assert "no-op" in plan.out and "waiting for readiness" in plan.out, plan.out


def test_two_concurrent_applies_exactly_one_proceeds(dproject: Path) -> None:
    write(
        dproject,
        {"slow": {"network_arch": "cosmos-rl", "model_path": "/m", "env": {"TAO_FAKE_LOAD_SECONDS": "4"}}},
    )
    first = start(dproject, "apply", "--auto-approve")
    wait_for(first, "starting")
    second = taoplan("apply", "--auto-approve", "--lock-timeout", "0.5", cwd=dproject)
    assert second.code == 5, second.text
    assert f"pid {first.pid}" in second.err and "apply" in second.err
    waiting = start(dproject, "apply", "--auto-approve", "--lock-timeout", "120")
    assert first.wait(timeout=120) == 0
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "No changes." in out
    assert len(labelled(dproject.name)) == 1


def test_lock_of_a_killed_holder_is_taken_over_with_a_warning(dproject: Path) -> None:
    write(
        dproject,
        {"slow": {"network_arch": "cosmos-rl", "model_path": "/m", "env": {"TAO_FAKE_LOAD_SECONDS": "8"}}},
    )
    holder = start(dproject, "apply", "--auto-approve")
    wait_for(holder, "model_loading")
    holder.kill()
    holder.wait()
    time.sleep(0.1)
    run = taoplan("apply", "--auto-approve", cwd=dproject)
    assert run.code == 0, run.text
    assert f"taking over the lock left by pid {holder.pid}" in run.err
    assert "that process is gone" in run.err
    unlock = taoplan("unlock", cwd=dproject)
    assert unlock.code == 0 and "not locked" in unlock.out


def test_two_projects_applying_at_once_get_distinct_ports(dproject: Path, tmp_path: Path) -> None:
    other = tmp_path / f"{dproject.name}b"
    other.mkdir()
    services = {f"s{i}": {"network_arch": "cosmos-rl", "model_path": f"/m/{i}"} for i in range(3)}
    write(dproject, services)
    write(other, services)
    try:
        procs = [start(folder, "apply", "--auto-approve") for folder in (dproject, other)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        urls = [r["host_url"] for folder in (dproject, other) for r in state_of(folder)["services"].values()]  # type: ignore[union-attr]
        assert len(urls) == 6 and len(set(urls)) == 6
    finally:
        assert taoplan("destroy", "--auto-approve", cwd=other).code == 0
