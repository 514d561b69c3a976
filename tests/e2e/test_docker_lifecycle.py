"""The core lifecycle on a real Docker engine, driven through the CLI exactly as a user runs it.

The services run the real TAO server class (nvidia-tao-core 7.3.0) with a tiny fake model.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import taoplan
from tests.e2e.conftest import docker, labelled, services_yaml
from tests.e2e.phasecheck import assert_phases_ordered

pytestmark = pytest.mark.docker

THREE = {
    "reason": {"network_arch": "cosmos-rl", "model_path": "hf_model://nvidia/Cosmos-Reason2-8B"},
    "predict": {
        "network_arch": "cosmos-predict2.5",
        "model_path": "hf_model://nvidia/Cosmos-Predict2.5-2B",
        "model_key": "base-2b",
    },
    "data": {"network_arch": "tao-dataservices", "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct"},
}


def write(project: Path, services: dict[str, dict[str, object]], **platform: object) -> None:
    (project / "services.yaml").write_text(services_yaml(project.name, services, **platform))


def status(project: Path) -> dict[str, dict[str, object]]:
    run = taoplan("status", "--json", cwd=project)
    assert run.code == 0, run.text
    return {row["name"]: row for row in json.loads(run.out)["services"]}


def readiness(url: str) -> int:
    return httpx.get(url + "/api/v1/health/readiness", timeout=5).status_code


def test_three_services_plan_apply_converge_and_stay_converged(dproject: Path) -> None:
    write(dproject, THREE)

    plan = taoplan("plan", "--detailed-exitcode", cwd=dproject)
    assert plan.code == 2, plan.text
    assert plan.out.count("+ create") == 3
    assert "Plan: 3 to create, 0 to replace, 0 to delete, 0 unchanged." in plan.out

    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text
    rows = status(dproject)
    assert set(rows) == set(THREE)
    for row in rows.values():
        assert row["state"] == "ready" and row["ready"] is True
        assert readiness(str(row["host_url"])) == 200
    assert len(labelled(dproject.name)) == 3

    again = taoplan("plan", "--detailed-exitcode", cwd=dproject)
    assert again.code == 0, again.text
    assert "No changes." in again.out

    # one model_path changes: exactly one replace, and apply converges
    changed = {**THREE, "reason": {**THREE["reason"], "model_path": "hf_model://nvidia/Cosmos-Reason2-2B"}}
    write(dproject, changed)
    plan = taoplan("plan", "--json", cwd=dproject)
    data = json.loads(plan.out)
    assert data["summary"] == {"create": 0, "replace": 1, "delete": 0, "noop": 2}
    [replace] = [c for c in data["changes"] if c["action"] == "replace"]
    assert replace["service"] == "reason"
    assert (
        'model_path: "hf_model://nvidia/Cosmos-Reason2-8B" → "hf_model://nvidia/Cosmos-Reason2-2B"'
        in replace["reasons"]
    )
    old_job = rows["reason"]["job_id"]
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text
    rows = status(dproject)
    assert rows["reason"]["job_id"] != old_job and rows["reason"]["ready"]
    assert old_job not in docker("ps", "-a", "--format", "{{.Names}}").split()
    assert len(labelled(dproject.name)) == 3
    assert taoplan("plan", "--detailed-exitcode", cwd=dproject).code == 0

    # a container removed behind taoplan's back is seen and repaired
    victim = rows["data"]["job_id"]
    docker("rm", "-f", str(victim))
    plan = taoplan("plan", cwd=dproject)
    assert "+ create   data" in plan.out and "is gone" in plan.out, plan.out
    assert taoplan("status", "--json", cwd=dproject).out.count('"state": "missing"') == 1
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text
    assert all(row["ready"] for row in status(dproject).values())
    assert len(labelled(dproject.name)) == 3

    # destroy leaves nothing: no container, no state entry, no registry entry
    destroy = taoplan("destroy", "--auto-approve", cwd=dproject)
    assert destroy.code == 0, destroy.text
    assert labelled(dproject.name) == []
    state = json.loads((dproject / ".taoplan" / "state.json").read_text())
    assert state["services"] == {}
    registry = json.loads((dproject.parent / "registry.json").read_text())
    assert [k for k in registry if k != "latest"] == []


def test_failing_model_load_fails_fast_while_the_others_converge(dproject: Path) -> None:
    services = {
        "good-a": {"network_arch": "cosmos-rl", "model_path": "/models/a"},
        "good-b": {"network_arch": "cosmos-rl", "model_path": "/models/b"},
        "broken": {
            "network_arch": "cosmos-rl",
            "model_path": "/models/broken",
            "env": {"TAO_FAKE_LOAD_SECONDS": "1", "TAO_FAKE_LOAD_FAIL": "weights are corrupt"},
            "readiness": {"timeout": 600},
        },
    }
    write(dproject, services)
    started = time.monotonic()
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    elapsed = time.monotonic() - started
    assert apply.code == 3, apply.text
    assert "broken: create failed: model_load_failed" in apply.err
    assert "weights are corrupt" in apply.err
    # fail-fast, not the 600 s timeout
    assert elapsed < 120, elapsed
    rows = status(dproject)
    assert rows["good-a"]["ready"] and rows["good-b"]["ready"]
    assert rows["broken"]["state"] == "failed"
    # the failed service is planned for replacement, like a tainted resource
    plan = taoplan("plan", cwd=dproject)
    assert "-/+ replace  broken" in plan.out and "last apply failed" in plan.out


def hold_first_free_port() -> socket.socket:
    """Bind the lowest free port from 8080, the one taoplan would otherwise allocate."""
    for port in range(8080, 8200):
        blocker = socket.socket()
        try:
            blocker.bind(("0.0.0.0", port))
        except OSError:
            blocker.close()
            continue
        blocker.listen()
        return blocker
    raise AssertionError("no free port from 8080")


def test_port_allocation_skips_a_port_bound_on_the_host(dproject: Path) -> None:
    with hold_first_free_port() as blocker:
        held = blocker.getsockname()[1]
        write(dproject, {"one": {"network_arch": "cosmos-rl", "model_path": "/models/one"}})
        apply = taoplan("apply", "--auto-approve", cwd=dproject)
        assert apply.code == 0, apply.text
        row = status(dproject)["one"]
        assert row["ready"] and int(str(row["host_url"]).rsplit(":", 1)[1]) > held
        registry = json.loads((dproject.parent / "registry.json").read_text())
        entry = registry[str(row["job_id"])]
        assert registry["latest"] == row["job_id"]
        assert entry["host_port"] != held and entry["platform"] == "local-docker"
        assert entry["docker_url"] == f"http://{row['job_id']}:8080"
    assert taoplan("destroy", "--auto-approve", cwd=dproject).code == 0


def test_secret_canary_appears_only_in_the_container_env(dproject: Path) -> None:
    canary = "hf-canary-7c1e0d5b"
    other = "wandb-canary-93ab"
    env = {"HF_TOKEN": canary, "WANDB_API_KEY": other}
    services = {
        "reason": {
            "network_arch": "cosmos-rl",
            "model_path": "/models/r",
            "secrets": ["HF_TOKEN", "WANDB_API_KEY"],
        },
        "broken": {
            "network_arch": "cosmos-rl",
            "model_path": "/models/b",
            "secrets": ["HF_TOKEN"],
            "env": {"TAO_FAKE_LOAD_FAIL": "nope"},
        },
    }
    write(dproject, services)
    outputs = []
    for args in (
        ("validate",),
        ("doctor",),
        ("plan",),
        ("plan", "--json"),
        ("render", "--out", "rendered"),
        ("apply", "--auto-approve"),
        ("status",),
        ("status", "--json"),
        ("logs", "reason"),
        ("logs", "broken"),
    ):
        outputs.append(taoplan(*args, cwd=dproject, env=env))
    assert outputs[5].code == 3  # the broken one fails; the secret still must not leak
    job = status(dproject)["reason"]["job_id"]
    inspect = json.loads(docker("inspect", str(job)))[0]
    assert f"HF_TOKEN={canary}" in inspect["Config"]["Env"]
    assert f"WANDB_API_KEY={other}" in inspect["Config"]["Env"]
    exposed = json.dumps(
        [
            inspect["Args"],
            inspect["Config"]["Cmd"],
            inspect["Config"]["Labels"],
            inspect["Config"]["Entrypoint"],
            inspect["Path"],
        ]
    )
    outputs.append(taoplan("destroy", "--auto-approve", cwd=dproject, env=env))
    for run in outputs:
        assert canary not in run.text and other not in run.text
    assert canary not in exposed and other not in exposed
    for path in [*dproject.rglob("*"), dproject.parent / "registry.json"]:
        if path.is_file():
            data = path.read_bytes()
            assert canary.encode() not in data and other.encode() not in data, path


def test_saved_plan_applies_exactly_and_goes_stale(dproject: Path) -> None:
    write(dproject, {"one": THREE["reason"]})
    saved = taoplan("plan", "-out", "one.plan", cwd=dproject)
    assert saved.code == 0 and "Saved the plan to one.plan" in saved.out
    # the file changes after the plan was made: the saved plan is stale, nothing is applied
    write(dproject, {"one": THREE["reason"], "two": THREE["data"]})
    stale = taoplan("apply", "one.plan", cwd=dproject)
    assert stale.code == 6, stale.text
    assert "stale plan" in stale.err and labelled(dproject.name) == []
    # a fresh plan applies exactly, without a prompt and without re-planning
    assert taoplan("plan", "-out", "two.plan", cwd=dproject).code == 0
    applied = taoplan("apply", "two.plan", cwd=dproject)
    assert applied.code == 0, applied.text
    assert len(labelled(dproject.name)) == 2
    # state moved on since two.plan was made: applying it again is refused with exit 6
    again = taoplan("apply", "two.plan", cwd=dproject)
    assert again.code == 6 and "state changed since it was made" in again.err
    assert taoplan("destroy", "--auto-approve", cwd=dproject).code == 0


def test_doctor_names_missing_secrets_and_checks_the_daemon(dproject: Path) -> None:
    write(dproject, {"one": {**THREE["reason"], "secrets": ["HF_TOKEN"]}})
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    run = taoplan("doctor", cwd=dproject, env=env)
    assert run.code == 1, run.text
    assert "ok   local-docker: docker daemon" in run.out
    assert "ok   local-docker: GPU runtime: gpus: none" in run.out
    assert "FAIL secret HF_TOKEN: missing" in run.out
    # apply refuses before changing anything
    apply = taoplan("apply", "--auto-approve", cwd=dproject, env=env)
    assert apply.code == 1 and "HF_TOKEN is not set" in apply.err
    assert labelled(dproject.name) == []


def test_apply_without_a_terminal_needs_approval_and_changes_nothing(dproject: Path) -> None:
    write(dproject, {"one": THREE["reason"]})
    run = taoplan("apply", cwd=dproject)
    assert run.code == 1
    assert "apply needs --auto-approve (or a saved plan file) when not run on a terminal" in run.err
    assert labelled(dproject.name) == []


def test_gpu_fit_is_unknown_with_gpus_none_and_without_a_driver(dproject: Path) -> None:
    """gpus: none, or no NVIDIA driver on this machine: the verdict is "unknown" with the reason; apply goes on."""
    write(dproject, {"reason": THREE["reason"]})
    plan = taoplan("plan", "--json", cwd=dproject)
    assert plan.code == 0, plan.text
    [change] = json.loads(plan.out)["changes"]
    assert change["fit"] == {
        "verdict": "unknown",
        "detail": "platforms.local-docker.gpus is none: containers get no GPU to count",
    }
    write(dproject, {"reason": THREE["reason"]}, gpus="nvidia")
    [change] = json.loads(taoplan("plan", "--json", cwd=dproject).out)["changes"]
    assert change["fit"]["verdict"] == "unknown"
    assert change["fit"]["detail"].startswith("no NVIDIA driver found (")
    assert "nvidia-smi is not on PATH" in change["fit"]["detail"]


def test_a_server_that_is_ready_but_cannot_answer_fails_apply_with_its_message(dproject: Path) -> None:
    """Readiness says 200, chat fails (TAO_FAKE_INFER_FAIL): the smoke request fails that service only."""
    import sqlite3

    hf = THREE["data"]
    broken = {**hf, "env": {"TAO_FAKE_INFER_FAIL": "CUDA error: out of memory"}}
    write(dproject, {"ok": hf, "broken": broken, "media": THREE["reason"]})
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 3, apply.text
    assert (
        "Error: broken: create failed: smoke_failed: HTTP 500: internal_error: CUDA error: out of memory"
        in apply.err
    ), apply.err
    assert "fake inference: failing (TAO_FAKE_INFER_FAIL)" in apply.err  # the log tail comes with it
    assert "✓ media: ready at " in apply.err
    assert "(smoke skipped: cosmos-rl requires media: set readiness.smoke.image" in apply.err
    rows = status(dproject)
    assert rows["ok"]["state"] == "ready" and rows["media"]["state"] == "ready"
    assert rows["broken"]["ready"] is False
    state = json.loads((dproject / ".taoplan" / "state.json").read_text())["services"]
    assert state["broken"]["status"] == "failed"
    assert state["ok"]["extra"]["smoke"].startswith("answered in ")

    # the smoke requests are in the request log, as taoplan-smoke, and cost nothing
    with sqlite3.connect(dproject / ".taoplan" / "gateway.db") as db:
        logged = db.execute(
            "SELECT caller, via, service, status, cost FROM requests ORDER BY service"
        ).fetchall()
    assert logged == [
        ("taoplan-smoke", "smoke", "broken", 500, 0.0),
        ("taoplan-smoke", "smoke", "ok", 200, 0.0),
    ]
    stats = json.loads(taoplan("stats", "--json", cwd=dproject).out)
    smoke_rows = [c for s in stats["services"] for c in s["callers"] if c["caller"] == "taoplan-smoke"]
    assert len(smoke_rows) == 2  # shown, so that a service's callers add up to its requests
    assert all(c["requests"] == 1 and not c["cost"] and not c["gpu_seconds"] for c in smoke_rows), smoke_rows

    # readiness.smoke: false: the same server counts as ready on readiness alone
    write(dproject, {"ok": hf, "broken": {**broken, "readiness": {"smoke": False}}, "media": THREE["reason"]})
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text
    assert status(dproject)["broken"]["state"] == "ready"


def test_phase_timings_of_a_service_with_a_3s_model_load(dproject: Path) -> None:
    hf = {**THREE["data"], "env": {"TAO_FAKE_LOAD_SECONDS": "3", "TAO_FAKE_INIT_SECONDS": "1"}}
    write(dproject, {"slow": hf})
    apply = taoplan("apply", "--auto-approve", cwd=dproject)
    assert apply.code == 0, apply.text
    row = status(dproject)["slow"]
    assert_phases_ordered(
        row, "container start", "server initializing", "model loading", "ready", "first answer"
    )
    shown = taoplan("status", cwd=dproject).out
    assert "SLOWEST_PHASE" in shown and "TIME_TO_READY" in shown, shown
