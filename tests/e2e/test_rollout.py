"""Replicas and rolling replaces on the real Docker engine, with traffic: the official `openai` client
sends about 20 requests per second through a running `taoplan gateway` while apply rolls, fails,
scales or is killed with -9, and not one request may fail. The fake TAO model echoes the model_path
it loaded, so every reply shows which spec answered it."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run, taoplan
from tests.e2e.conftest import docker, labelled, services_yaml
from tests.e2e.gateway_support import rows, until
from tests.e2e.rollout_support import LoadLoop, Served
from tests.e2e.test_crash_safety import start, wait_for

pytestmark = pytest.mark.docker

LOAD = {"TAO_FAKE_LOAD_SECONDS": "1.5", "TAO_FAKE_INFER_SECONDS": "0.2"}


def chat(model_path: str, **fields: Any) -> dict[str, dict[str, object]]:
    env = {**LOAD, **fields.pop("env", {})}
    return {"chat": {"network_arch": "cosmos-rl", "model_path": model_path, "env": env, **fields}}


def write(project: Path, services: dict[str, dict[str, object]]) -> None:
    (project / "services.yaml").write_text(services_yaml(project.name, services) + "gateway: {}\n")


def state_of(project: Path) -> dict[str, Any]:
    return json.loads((project / ".taoplan" / "state.json").read_text())


def journal(project: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (project / ".taoplan" / "journal.jsonl").read_text().splitlines()]


def containers(project: Path) -> dict[str, str]:
    """job id -> model_path of every container of the project, running or not."""
    out = {}
    for name in labelled(project.name):
        labels = json.loads(docker("inspect", "--format", "{{json .Config.Labels}}", name))
        out[labels["taoplan.job-id"]] = name
    return out


def assert_converged(project: Path, replicas: int) -> dict[str, Any]:
    """One container per replica, each known to state, all ready; nothing retiring; the registry agrees."""
    state = state_of(project)
    assert state["retiring"] == {}, state["retiring"]
    keys = ["chat"] + [f"chat.{i}" for i in range(1, replicas)]
    assert sorted(state["services"]) == keys
    jobs = sorted(r["job_id"] for r in state["services"].values())
    assert sorted(containers(project)) == jobs, "exactly one container per replica, no orphan"
    assert all(r["status"] == "ready" for r in state["services"].values())
    registry = json.loads((project.parent / "registry.json").read_text())
    assert sorted(k for k in registry if k != "latest") == jobs
    return state


def apply_under_load(project: Path, services: dict[str, dict[str, object]]) -> tuple[Run, LoadLoop]:
    """Write ``services`` and apply them while the load loop runs through a gateway (20 replies
    before, 20 after); the apply's run and the loop, stopped."""
    with Served(project) as served, served.load() as load:
        load.wait_for(20)
        write(project, services)
        apply = taoplan("apply", "--auto-approve", cwd=project)
        load.wait_for(20)
    return apply, load


def test_a_model_path_change_rolls_two_replicas_with_zero_failed_requests(dproject: Path) -> None:
    write(dproject, chat("/models/v1", replicas=2))
    first = taoplan("apply", "--auto-approve", cwd=dproject)
    assert first.code == 0, first.text
    old_jobs = {r["job_id"] for r in state_of(dproject)["services"].values()}

    with Served(dproject) as served, served.load() as load:
        load.wait_for(20)
        write(dproject, chat("/models/v2", replicas=2))
        plan = taoplan("plan", cwd=dproject)
        assert plan.out.count("rolling: no GPUs are held (gpus: none)") == 2, plan.out
        apply = taoplan("apply", "--auto-approve", cwd=dproject)
        assert apply.code == 0, apply.text
        load.wait_for(20)
    assert not load.failures, load.summary()
    seen = load.model_paths()
    assert set(seen) == {"/models/v1", "/models/v2"}, seen
    assert {r["model_path"] for r in load.replies[-10:]} == {"/models/v2"}

    state = assert_converged(dproject, 2)
    assert not old_jobs & {r["job_id"] for r in state["services"].values()}
    steps = [(e["job_id"], e["step"]) for e in journal(dproject) if e["phase"] == "rollout"]
    for old in old_jobs:  # every old workload: retiring, then draining, then drained (in order)
        mine = [step for job, step in steps if job == old]
        assert mine == ["retiring", "draining", "drained"], mine
    # one replica at a time: the second rollout starts after the first old workload is deleted
    events = [(e["phase"], e.get("action"), e.get("outcome")) for e in journal(dproject)]
    first_retired = events.index(("outcome", "retire", "deleted"))
    intents = [i for i, e in enumerate(events) if e[:2] == ("intent", "replace")]
    assert len(intents) == 2 and intents[0] < first_retired < intents[1]


def test_recreate_with_two_replicas_goes_one_at_a_time_with_zero_failed_requests(dproject: Path) -> None:
    """rollout: recreate (GPUs that cannot be held twice): each replica drains and stops before its
    successor starts, one replica at a time, so the other one serves meanwhile."""
    write(dproject, chat("/models/v1", replicas=2, rollout="recreate"))
    assert taoplan("apply", "--auto-approve", cwd=dproject).code == 0

    apply, load = apply_under_load(dproject, chat("/models/v2", replicas=2, rollout="recreate"))
    assert apply.code == 0, apply.text
    assert apply.out.count("recreate: rollout: recreate (the old workload stops first)") == 2
    assert not load.failures, load.summary()
    assert set(load.model_paths()) == {"/models/v1", "/models/v2"}
    assert_converged(dproject, 2)


def test_a_rollout_whose_new_workload_fails_keeps_the_old_one_serving(dproject: Path) -> None:
    write(dproject, chat("/models/good"))
    assert taoplan("apply", "--auto-approve", cwd=dproject).code == 0
    old_job = state_of(dproject)["services"]["chat"]["job_id"]

    apply, load = apply_under_load(
        dproject, chat("/models/broken", env={"TAO_FAKE_LOAD_FAIL": "weights corrupt"})
    )
    assert apply.code == 3, apply.text
    assert f"the old workload {old_job[:8]} keeps serving" in apply.text
    assert not load.failures, load.summary()
    assert set(load.model_paths()) == {"/models/good"}

    state = state_of(dproject)
    assert state["services"]["chat"]["status"] == "failed"
    assert "weights corrupt" in state["services"]["chat"]["readiness"]
    assert list(state["retiring"]) == [old_job]
    assert list(containers(dproject)) == [old_job], "the failed workload was removed"
    status = taoplan("status", "--json", cwd=dproject)
    rows = {(r["role"], r["state"]) for r in json.loads(status.out)["services"]}
    assert rows == {("current", "failed"), ("retiring", "ready")}

    # the fix rolls out and retires the old workload
    write(dproject, chat("/models/fixed"))
    fixed = taoplan("apply", "--auto-approve", cwd=dproject)
    assert fixed.code == 0, fixed.text
    assert_converged(dproject, 1)


def test_scale_1_3_1_never_replaces_the_first_replica(dproject: Path) -> None:
    write(dproject, chat("/models/v1"))
    assert taoplan("apply", "--auto-approve", cwd=dproject).code == 0
    first = state_of(dproject)["services"]["chat"]["job_id"]

    with Served(dproject) as served, served.load() as load:
        write(dproject, chat("/models/v1", replicas=3))
        up = taoplan("apply", "--auto-approve", cwd=dproject)
        assert up.code == 0, up.text
        assert "Plan: 2 to create, 0 to replace, 0 to delete, 1 unchanged." in up.out
        assert_converged(dproject, 3)
        jobs = {r["job_id"] for r in state_of(dproject)["services"].values()}
        until("all 3 replicas answer", lambda: jobs <= answered_by(dproject), timeout=60)
        write(dproject, chat("/models/v1", replicas=1))
        down = taoplan("apply", "--auto-approve", cwd=dproject)
        assert down.code == 0, down.text
        assert down.out.count("scale down: replicas 3 → 1") == 2
        load.wait_for(20)
    assert not load.failures, load.summary()
    state = assert_converged(dproject, 1)
    assert state["services"]["chat"]["job_id"] == first


def answered_by(project: Path) -> set[str]:
    """The job ids the gateway's request log shows answering."""
    return {r.job_id for r in rows(project / ".taoplan") if r.status == 200}


ROLLOUT_FAULTS = [
    "after-intent",
    "after-record-creating",
    "after-start",
    "after-registry-add",
    "before-record-ready",
    "rollout-after-ready",
    "rollout-after-routed",
    "rollout-after-draining",
    "rollout-after-stop-old",
]


@pytest.mark.parametrize("fault", ROLLOUT_FAULTS)
def test_kill_at_each_rollout_step_then_apply_finishes_it(dproject: Path, fault: str) -> None:
    write(dproject, chat("/models/v1"))
    assert taoplan("apply", "--auto-approve", cwd=dproject).code == 0

    with Served(dproject) as served, served.load() as load:
        load.wait_for(10)
        write(dproject, chat("/models/v2"))
        crashed = taoplan("apply", "--auto-approve", cwd=dproject, env={"TAOPLAN_FAULT": fault})
        assert crashed.code == -signal.SIGKILL, crashed.text
        load.wait_for(10)
        plan = taoplan("plan", cwd=dproject)
        assert plan.code == 0, plan.text  # state parses, and every workload is accounted for
        recorded = {
            r["job_id"]
            for r in [*state_of(dproject)["services"].values(), *state_of(dproject)["retiring"].values()]
        }
        for job in containers(dproject):
            assert job in recorded or job in plan.out, f"{job} is invisible to plan"
        again = taoplan("apply", "--auto-approve", cwd=dproject)
        assert again.code == 0, again.text
        load.wait_for(10)
    assert not load.failures, load.summary()
    assert {r["model_path"] for r in load.replies[-5:]} == {"/models/v2"}
    assert_converged(dproject, 1)
    assert taoplan("plan", "--detailed-exitcode", cwd=dproject).code == 0


@pytest.mark.parametrize("during", ["model_loading", "draining"])
def test_ctrl_c_during_a_rollout_leaves_both_recorded_and_the_next_apply_finishes_it(
    dproject: Path, during: str
) -> None:
    write(dproject, chat("/models/v1"))
    assert taoplan("apply", "--auto-approve", cwd=dproject).code == 0
    old = state_of(dproject)["services"]["chat"]["job_id"]

    with Served(dproject) as served, served.load() as load:
        load.wait_for(10)
        # a long request holds the drain open, so Ctrl+C lands while the old workload drains
        slow = chat("/models/v2", drain_timeout=30, env={"TAO_FAKE_LOAD_SECONDS": "4"})
        write(dproject, slow)
        proc = start(dproject, "apply", "--auto-approve")
        if during == "draining":
            long_request = threading.Thread(target=served.answers)
            wait_for(proc, "waiting for the gateways to route")
            long_request.start()
        wait_for(proc, during)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        state = state_of(dproject)
        assert list(state["retiring"]) == [old], "the old workload is still recorded, serving"
        assert state["services"]["chat"]["job_id"] != old, "and so is the new one"
        assert sorted(containers(dproject)) == sorted([old, state["services"]["chat"]["job_id"]])
        plan = taoplan("plan", cwd=dproject)
        assert f"finish the rollout: drain and delete {old[:8]}" in plan.out, plan.out
        again = taoplan("apply", "--auto-approve", cwd=dproject)
        assert again.code == 0, again.text
        load.wait_for(10)
    assert not load.failures, load.summary()
    assert_converged(dproject, 1)
