"""Platform `lepton` end to end through the CLI, against the Lepton control-plane double
(tests/lepton_double: the legacy /deployments API on loopback, each deployment a real container of the
TAO test image behind an endpoint proxy that wants its Bearer token), with the real leptonai SDK.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run, taoplan
from tests.e2e.conftest import TEST_IMAGE, labelled
from tests.lepton_double import Double, start_double

pytestmark = pytest.mark.docker

REASON = {"network_arch": "cosmos-rl", "model_path": "/models/reason"}
RL_VALUES = (
    "--image",
    "https://example.com/cat.jpg",
    "--max-tokens",
    "16",
    "--temperature",
    "0.1",
    "--top-p",
    "0.5",
)


@pytest.fixture
def lepton(docker_engine: None) -> Iterator[Double]:
    double = start_double(workspace_id="wstest01")
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def lproject(docker_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / f"p{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path / "lepton-cache"))
    for name in ("TAOPLAN_STATE_DIR", "LEPTON_WORKSPACE_ID", "LEPTON_AUTH_TOKEN", "LEPTON_WORKSPACE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield folder
    leftovers = labelled(folder.name)
    if leftovers:
        subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True)


def services_yaml(
    project: Path,
    double: Double | None,
    services: dict[str, dict[str, Any]],
    docker: bool = False,
    **settings: Any,
) -> Path:
    lepton: dict[str, Any] = {"resource_shape": "gpu.1xh200", "node_group": "double-h200"}
    if double is not None:
        lepton |= {"workspace_id": double.ws, "url": double.url}
    lepton |= {"shared_memory_size": "64Mi", **settings}
    lepton = {k: v for k, v in lepton.items() if v is not None}
    lines = [
        "version: 1",
        f"project: {project.name}",
        "defaults:",
        f"  image: {TEST_IMAGE}",
        "  platform: lepton",
        "  readiness: {timeout: 180}",
        "platforms:",
        f"  lepton: {json.dumps(lepton)}",
    ]
    if docker:
        lines.append('  local-docker: {"gpus": "none", "shm_size": "64m"}')
    lines.append("services:")
    lines += [f"  {name}: {json.dumps(fields)}" for name, fields in services.items()]
    path = project / "services.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def env_for(double: Double, **extra: str) -> dict[str, str]:
    return {"LEPTON_AUTH_TOKEN": double.token, **extra}


def status(project: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    run = taoplan("status", "--json", cwd=project, env=env)
    assert run.code == 0, run.text
    return {row["name"]: row for row in json.loads(run.out)["services"]}


def one_line_error(run: Run, code: int = 1) -> str:
    assert run.code == code, run.text
    # taoplan's own traceback would start a line; a server's, in the indented log tail, may appear
    assert not any(line.startswith("Traceback") for line in run.text.splitlines())
    lines = [line for line in run.err.splitlines() if line.startswith("Error: ")]
    assert lines, run.err
    return lines[0]


def state_text(project: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (project / ".taoplan").rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------ lifecycle


def test_plan_apply_status_request_logs_destroy(lepton: Double, lproject: Path) -> None:
    services_yaml(lproject, lepton, {"reason": REASON})
    env = env_for(lepton)
    plan = taoplan("plan", "--detailed-exitcode", cwd=lproject, env=env)
    assert plan.code == 2, plan.text
    assert "+ create" in plan.out and "lepton: Deployment (1 replica, shape gpu.1xh200" in plan.out

    apply = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    assert apply.code == 0, apply.text
    row = status(lproject, env)["reason"]
    assert row["state"] == "ready" and row["platform"] == "lepton"
    # rendered after apply: the recorded job, so the very object apply sent
    render = taoplan("render", "--out", "rendered", cwd=lproject, env=env)
    assert render.code == 0, render.text
    [rendered] = list((lproject / "rendered").rglob("deployment.json"))
    spec = json.loads(rendered.read_text())
    assert spec["spec"]["resource_requirement"]["affinity"] == {
        "allowed_dedicated_node_groups": [lepton.node_group_id]
    }
    assert spec["spec"]["resource_requirement"]["shared_memory_size"] == 64
    assert spec["spec"]["container"]["command"][:2] == ["/bin/bash", "-c"]
    assert "'TAO_EXECUTION_BACKEND':'lepton'" not in spec["spec"]["container"]["command"][2]
    assert '"TAO_EXECUTION_BACKEND":"lepton"' in spec["spec"]["container"]["command"][2]
    assert "api_tokens" not in spec["spec"]  # Lepton generates the endpoint token

    [name] = list(lepton.deployments)
    dep = lepton.deployments[name]
    assert name == f"tao-reason-{row['job_id'].replace('-', '')[:8]}"
    assert row["host_url"] == dep.proxy.url  # status.endpoint.external_endpoint
    # exactly the rendered object went out (the double adds only the token it generated)
    assert {k: v for k, v in dep.spec.items() if k != "api_tokens"} == spec["spec"]
    assert dep.metadata["labels"] == spec["metadata"]["labels"]
    generated = dep.spec["api_tokens"][0]["value"]

    registry = json.loads((lproject.parent / "registry.json").read_text())
    entry = registry[row["job_id"]]
    assert entry["platform"] == "lepton" and entry["platform_job_id"] == name
    assert entry["host_url"] == dep.proxy.url

    reply = taoplan(
        "request", "reason", "--prompt", "hello", *RL_VALUES, "--json", cwd=lproject, env=env, stdin=""
    )
    assert reply.code == 0, reply.text
    assert json.loads(reply.out)["choices"]

    logs = taoplan("logs", "reason", cwd=lproject, env=env)
    assert logs.code == 0, logs.text
    assert "Job data" in logs.out

    again = taoplan("plan", "--detailed-exitcode", cwd=lproject, env=env)
    assert again.code == 0, again.text

    destroy = taoplan("destroy", "--auto-approve", cwd=lproject, env=env)
    assert destroy.code == 0, destroy.text
    assert lepton.deployments == {} and lepton.containers() == [] and lepton.secrets == {}
    for text in (state_text(lproject), json.dumps(registry), apply.text, reply.text, logs.text):
        assert generated not in text


def test_docker_and_lepton_in_one_file(lepton: Double, lproject: Path) -> None:
    services_yaml(
        lproject, lepton, {"cloud": REASON, "local": {**REASON, "platform": "local-docker"}}, docker=True
    )
    env = env_for(lepton)
    apply = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    assert apply.code == 0, apply.text
    rows = status(lproject, env)
    assert {r["platform"] for r in rows.values()} == {"lepton", "local-docker"}
    assert all(r["state"] == "ready" for r in rows.values())
    assert len(lepton.deployments) == 1 and len(labelled(lproject.name)) == 1
    for name in rows:
        run = taoplan("request", name, "--prompt", "hi", *RL_VALUES, cwd=lproject, env=env, stdin="")
        assert run.code == 0, run.text
    assert taoplan("destroy", "--auto-approve", cwd=lproject, env=env).code == 0
    assert lepton.deployments == {} and labelled(lproject.name) == []


def test_drift_deployment_deleted_in_the_console(lepton: Double, lproject: Path) -> None:
    services_yaml(lproject, lepton, {"reason": REASON})
    env = env_for(lepton)
    assert taoplan("apply", "--auto-approve", cwd=lproject, env=env).code == 0
    [name] = list(lepton.deployments)
    lepton.delete_deployment_out_of_band(name)
    plan = taoplan("plan", "--json", cwd=lproject, env=env)
    assert plan.code == 0, plan.text
    data = json.loads(plan.out)
    assert data["summary"]["create"] == 1, data
    row = taoplan("status", "--json", cwd=lproject, env=env)
    assert json.loads(row.out)["services"][0]["state"] == "missing"
    apply = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    assert apply.code == 0, apply.text
    assert len(lepton.deployments) == 1 and name not in lepton.deployments
    [second] = list(lepton.deployments)

    # a changed spec replaces the deployment: the new one first while the node group has GPUs free,
    # then the old one (and its secrets) go
    services_yaml(lproject, lepton, {"reason": {**REASON, "model_path": "/models/reason-2"}})
    plan = json.loads(taoplan("plan", "--json", cwd=lproject, env=env).out)
    assert plan["summary"]["replace"] == 1, plan
    apply = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    assert apply.code == 0, apply.text
    assert "rolling: needs 1 more GPU during the rollout" in apply.text
    [third] = list(lepton.deployments)
    assert third != second and status(lproject, env)["reason"]["state"] == "ready"


def test_orphan_deployment_is_deleted(lepton: Double, lproject: Path) -> None:
    services_yaml(lproject, lepton, {"reason": REASON, "other": {**REASON, "model_path": "/models/o"}})
    env = env_for(lepton)
    assert taoplan("apply", "--auto-approve", cwd=lproject, env=env).code == 0
    services_yaml(lproject, lepton, {"reason": REASON})
    apply = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    assert apply.code == 0, apply.text
    assert [n.split("-")[1] for n in lepton.deployments] == ["reason"]
    assert taoplan("destroy", "--auto-approve", cwd=lproject, env=env).code == 0


# ------------------------------------------------------------------------------------------ failures


def test_model_that_fails_to_load(lepton: Double, lproject: Path) -> None:
    services_yaml(lproject, lepton, {"bad": {**REASON, "env": {"TAO_FAKE_LOAD_FAIL": "weights corrupt"}}})
    env = env_for(lepton)
    apply = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    line = one_line_error(apply, 3)
    assert "model_load_failed" in line, apply.text
    assert "weights corrupt" in apply.text
    assert status(lproject, env)["bad"]["state"] == "failed"


def test_plan_fit_comes_from_the_node_groups_nodes(lepton: Double, lproject: Path) -> None:
    """The double's node group is one node of 8 GPUs: one GPU fits; when another workspace's
    deployment holds all 8 the plan says "queues" and names it, and apply starts nothing without
    --allow-queue; nine GPUs cannot fit at all."""
    services_yaml(lproject, lepton, {"reason": REASON})
    env = env_for(lepton)
    [change] = json.loads(taoplan("plan", "--json", cwd=lproject, env=env).out)["changes"]
    assert change["fit"] == {"verdict": "fits", "detail": "1 GPU on double-h200-node-0 (8 of 8 free)"}

    lepton.hold_gpus(8)
    [change] = json.loads(taoplan("plan", "--json", cwd=lproject, env=env).out)["changes"]
    assert change["fit"]["verdict"] == "queues", change
    assert change["fit"]["detail"] == (
        "needs 1 GPU, 0 free now on one place; "
        "8 GPUs held by lepton deployment other-team-llm (workspace other-workspace)"
    )
    apply = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    assert apply.code == 1 and "(apply --allow-queue lets it wait)" in apply.err, apply.text
    assert lepton.deployments == {}

    services_yaml(lproject, lepton, {"reason": {**REASON, "num_gpus": 9}})
    plan = taoplan("plan", cwd=lproject, env=env)
    assert plan.code == 0, plan.text
    assert "needs 9 GPUs on one place; the largest place (double-h200-node-0) has 8" in plan.out, plan.out


def test_no_capacity_is_shown_while_waiting(lepton: Double, lproject: Path) -> None:
    lepton.hold_gpus(8)
    services_yaml(lproject, lepton, {"reason": {**REASON, "readiness": {"timeout": 15}}})
    env = env_for(lepton)
    apply = taoplan("apply", "--auto-approve", "--allow-queue", cwd=lproject, env=env)
    line = one_line_error(apply, 3)
    assert "timeout" in line and "NoCapacity" in line, apply.text
    row = status(lproject, env)["reason"]
    assert row["state"] == "starting" and "NoCapacity" in row["detail"]
    lepton.hold_gpus(0)  # the other workspace lets go: the double schedules it now
    settle = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    assert settle.code == 0, settle.text
    assert status(lproject, env)["reason"]["state"] == "ready"


def test_config_error_fails_fast_and_doctor_reports_the_pull_secret(lepton: Double, lproject: Path) -> None:
    services_yaml(lproject, lepton, {"reason": REASON}, image_pull_secret="nvcr-pull")
    env = env_for(lepton)
    doctor = taoplan("doctor", cwd=lproject, env=env)
    assert doctor.code != 0, doctor.text
    checks = [
        c for c in ("SDK", "token", "workspace", "shape", "pull secret") if f"lepton: {c}" in doctor.out
    ]
    assert checks == ["SDK", "token", "workspace", "shape", "pull secret"], doctor.out
    order = [doctor.out.index(f"lepton: {c}") for c in checks]
    assert order == sorted(order), doctor.out
    assert "image pull secret 'nvcr-pull' does not exist" in doctor.out

    # apply fails on ConfigError at once (the readiness timeout is 180 s: not a timeout)
    apply = taoplan("apply", "--auto-approve", cwd=lproject, env=env)
    line = one_line_error(apply, 3)
    assert "ConfigError" in line and "nvcr-pull" in line and "timeout" not in line, apply.text

    lepton.add_image_pull_secret("nvcr-pull")
    doctor = taoplan("doctor", cwd=lproject, env=env)
    assert doctor.code == 0, doctor.text
    assert taoplan("destroy", "--auto-approve", cwd=lproject, env=env).code == 0


def test_wrong_token_is_one_line_and_changes_nothing(lepton: Double, lproject: Path) -> None:
    services_yaml(lproject, lepton, {"reason": REASON})
    env = env_for(lepton, LEPTON_AUTH_TOKEN="not-the-token-0123")
    for args in (("plan",), ("apply", "--auto-approve")):
        run = taoplan(*args, cwd=lproject, env=env)
        line = one_line_error(run)
        assert "refused the token in LEPTON_AUTH_TOKEN (401 Unauthorized)" in line, run.text
        assert "not-the-token-0123" not in run.text and "no****23" not in run.text
    assert lepton.deployments == {} and lepton.secrets == {}
    assert (
        not (lproject / ".taoplan" / "state.json").exists()
        or '"services": {}' in (lproject / ".taoplan" / "state.json").read_text()
    )
    doctor = taoplan("doctor", cwd=lproject, env=env)
    assert doctor.code != 0 and "workspace" in doctor.out and "401" in doctor.out, doctor.text


# ------------------------------------------------------------------------------------------ bad input


def test_bad_input_gets_located_errors(lepton: Double, lproject: Path) -> None:
    env = env_for(lepton)
    path = services_yaml(lproject, None, {"reason": REASON}, url=lepton.url)
    run = taoplan("plan", cwd=lproject, env=env)
    line = one_line_error(run)
    assert f"{path.name}:8:" in line and "platforms.lepton.workspace_id: no Lepton workspace" in line, line

    path = services_yaml(lproject, lepton, {"reason": REASON}, resource_shape="gpu.3xfoo")
    for args in (("plan",), ("doctor",)):
        run = taoplan(*args, cwd=lproject, env=env)
        text = one_line_error(run) if args == ("plan",) else run.out
        assert run.code != 0
        assert (
            f"{path.name}:8:" in text
            and "platforms.lepton.resource_shape: shape 'gpu.3xfoo' is not offered" in text
        )

    path = services_yaml(lproject, lepton, {"reason": REASON}, node_group="ng-nope")
    line = one_line_error(taoplan("plan", cwd=lproject, env=env))
    assert f"{path.name}:8:" in line and "platforms.lepton.node_group: node group 'ng-nope' not found" in line

    long_name = "a-service-name-of-thirty-chars"
    path = services_yaml(lproject, lepton, {long_name: REASON})
    for args in (("apply", "--auto-approve"), ("render", "--out", "r")):
        line = one_line_error(taoplan(*args, cwd=lproject, env=env))
        assert f"{path.name}:10:" in line and f"services.{long_name}" in line and "at most 36" in line, line
    assert lepton.deployments == {}


# ------------------------------------------------------------------------------------------ canary


def test_tokens_and_secret_appear_only_in_the_double_and_the_container(
    lepton: Double, lproject: Path
) -> None:
    ws_token = f"ws-canary-{uuid.uuid4().hex}"
    ep_token = f"ep-canary-{uuid.uuid4().hex}"
    hf = f"hf-canary-{uuid.uuid4().hex}"
    double = start_double(workspace_id="wscanary", token=ws_token)
    try:
        services_yaml(
            lproject,
            double,
            {"reason": {**REASON, "secrets": ["HF_TOKEN"]}},
            endpoint_token_secret="LEPTON_ENDPOINT_TOKEN",
        )
        env = {"LEPTON_AUTH_TOKEN": ws_token, "LEPTON_ENDPOINT_TOKEN": ep_token, "HF_TOKEN": hf}
        outputs = []
        for args in (
            ("validate",),
            ("doctor",),
            ("plan",),
            ("plan", "--json"),
            ("render", "--out", "rendered"),
            ("plan", "--server-dry-run"),
            ("apply", "--auto-approve"),
            ("status",),
            ("status", "--json"),
            ("logs", "reason"),
        ):
            outputs.append(taoplan(*args, cwd=lproject, env=env))
        assert outputs[5].code == 0 and "every platform accepts" in outputs[5].out, outputs[5].text
        assert outputs[6].code == 0, outputs[6].text
        outputs.append(
            taoplan("request", "reason", "--prompt", "hi", *RL_VALUES, cwd=lproject, env=env, stdin="")
        )
        assert outputs[-1].code == 0, outputs[-1].text
        processes = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
        [dep] = double.deployments.values()
        container_env = double.dk.containers.get(double.container_id(dep.name)).attrs["Config"]["Env"]
        assert f"HF_TOKEN={hf}" in container_env
        assert set(double.secrets.values()) == {hf, ep_token}  # the double's secret store
        assert dep.spec["api_tokens"] == [
            {"value_from": {"token_name_ref": next(n for n, v in double.secrets.items() if v == ep_token)}}
        ]
        spec_text = json.dumps([dep.spec, dep.metadata])
        outputs.append(taoplan("destroy", "--auto-approve", cwd=lproject, env=env))
        assert outputs[-1].code == 0, outputs[-1].text
        assert double.secrets == {}
    finally:
        double.stop()
    for canary in (ws_token, ep_token, hf):
        for run in outputs:
            assert canary not in run.text
        assert canary not in processes and canary not in spec_text
        for path in [*lproject.parent.rglob("*")]:
            if path.is_file():
                assert canary.encode() not in path.read_bytes(), path
