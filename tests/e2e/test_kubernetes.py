"""The `kubernetes` platform against a real control plane, driven through the CLI as a user runs it.

scripts/k8s-lab.sh builds kube-apiserver, kube-controller-manager, kube-scheduler and kubelet from the
official Go modules (v1.33.13). Two levels take part:

* kwok nodes (`up`): pods are scheduled against their `nvidia.com/gpu` and reported Running/Ready by
  kwok, but nothing runs in them. Used for what needs no server: scheduling, admission, URLs, doctor.
* a REAL node (`node-up`): kubelet + containerd + bridge CNI, tainted ``taoplan.io/real-node``, with
  the TAO test image imported. Pods that tolerate the taint run the real TAO server class; readiness,
  the port-forward and `taoplan request` go through the real API server and kubelet.

No mocks: every assertion reads what the API server, the kubelet or the server answered.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Run, taoplan
from tests.e2e.conftest import TEST_IMAGE
from tests.e2e.phasecheck import assert_phases_ordered

pytestmark = pytest.mark.kubernetes

LAB = ROOT / "scripts" / "k8s-lab.sh"
REAL_NODE = {
    "node_selector": {"taoplan.io/lab": "kubelet"},
    "tolerations": [{"key": "taoplan.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
}
KWOK = {"node_selector": {"type": "kwok"}}
MANAGED = "app.kubernetes.io/managed-by=taoplan"
RL_VALUES = ("--max-tokens", "16", "--temperature", "0.1", "--top-p", "0.5")
IMAGE_URL = "https://example.com/cat.jpg"


def lab(command: str) -> str:
    proc = subprocess.run(["bash", str(LAB), command], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, f"k8s-lab.sh {command} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


TEST_NAMESPACE_LABEL = "taoplan.io/e2e-test"


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """The kwok-level lab: control plane plus fake GPU nodes (idempotent; 0.3 s when running)."""
    lab("up")
    line = next(x for x in lab("env").splitlines() if x.startswith("export KUBECONFIG="))
    path = line.split("=", 1)[1]
    remove_stale_test_namespaces(Kube(path))
    return path


def remove_stale_test_namespaces(kube: Kube) -> None:
    """An earlier test session that was killed leaves its namespaces behind, and their pods hold
    the real node's GPUs: remove them (and wait) before this session's tests count free GPUs."""
    stale = kube.core.list_namespace(label_selector=TEST_NAMESPACE_LABEL).items
    for ns in stale:
        with contextlib.suppress(Exception):  # already terminating
            kube.core.delete_namespace(ns.metadata.name, grace_period_seconds=0)
    kube.wait_for(
        "stale test namespaces to go",
        lambda: not kube.core.list_namespace(label_selector=TEST_NAMESPACE_LABEL).items,
        timeout=180,
    )


@pytest.fixture(scope="session")
def real_node(kubeconfig: str, docker_engine: None) -> str:
    """One real kubelet node with the TAO test image (idempotent)."""
    lab("node-up")
    return kubeconfig


class Kube:
    """Assertions read the cluster through the official client, like any other API user."""

    def __init__(self, kubeconfig: str) -> None:
        from kubernetes import client, config

        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def plain(self, obj: Any) -> Any:
        return self.api.sanitize_for_serialization(obj)

    def labelled(self, namespace: str, selector: str) -> dict[str, list[dict[str, Any]]]:
        """Every object kind taoplan creates (or causes), carrying ``selector``."""
        return {
            "deployments": self.plain(
                self.apps.list_namespaced_deployment(namespace, label_selector=selector)
            )["items"],
            "replicasets": self.plain(
                self.apps.list_namespaced_replica_set(namespace, label_selector=selector)
            )["items"],
            "pods": self.plain(self.core.list_namespaced_pod(namespace, label_selector=selector))["items"],
            "services": self.plain(self.core.list_namespaced_service(namespace, label_selector=selector))[
                "items"
            ],
            "secrets": self.plain(self.core.list_namespaced_secret(namespace, label_selector=selector))[
                "items"
            ],
        }

    def wait_for(self, what: str, check: Any, timeout: float = 120.0) -> Any:
        """Poll until ``check()`` is truthy (a deadline for a hang, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while True:
            got = check()
            if got:
                return got
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            time.sleep(0.3)


@dataclass
class Project:
    folder: Path
    namespace: str
    kube: Kube
    env: dict[str, str]
    outputs: list[str]

    @property
    def name(self) -> str:
        return self.folder.name

    def write(self, services: dict[str, dict[str, Any]], *, timeout: float = 120, **platform: Any) -> None:
        settings = {"namespace": self.namespace, "shm_size": "64Mi", **platform}
        lines = [
            "version: 1",
            f"project: {self.name}",
            "defaults:",
            f"  image: {TEST_IMAGE}",
            f"  readiness: {{timeout: {timeout}}}",
            "  platform: kubernetes",
            "platforms:",
            f"  kubernetes: {json.dumps(settings)}",
            '  local-docker: {"gpus": "none", "shm_size": "64m"}',
            "services:",
        ]
        lines += [f"  {name}: {json.dumps(fields)}" for name, fields in services.items()]
        (self.folder / "services.yaml").write_text("\n".join(lines) + "\n")

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return taoplan(*args, cwd=self.folder, env={**self.env, **(env or {})})

    def status(self, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
        run = self.run("status", "--json", env=env)
        assert run.code == 0, run.text
        self.outputs.append(run.text)
        return {row["name"]: row for row in json.loads(run.out)["services"]}

    def state(self) -> dict[str, Any]:
        return json.loads((self.folder / ".taoplan" / "state.json").read_text())

    def objects(self, selector: str = "") -> dict[str, list[dict[str, Any]]]:
        return self.kube.labelled(
            self.namespace, ",".join(filter(None, [MANAGED, f"taoplan.io/project={self.name}", selector]))
        )


def forwarder_pids(state: dict[str, Any]) -> list[int]:
    return [r["extra"]["tunnel_pid"] for r in state["services"].values() if r["extra"].get("tunnel_pid")]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture
def kproject(kubeconfig: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A project folder and a namespace of its own; both cleaned up afterwards."""
    from taoplan.platforms.kubernetes.forward import close_forwarder, forward_spec

    folder = tmp_path / f"k{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    namespace = f"tp-{folder.name}"
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    monkeypatch.delenv("TAOPLAN_STATE_DIR", raising=False)
    kube = Kube(kubeconfig)
    kube.core.create_namespace({"metadata": {"name": namespace, "labels": {TEST_NAMESPACE_LABEL: "true"}}})
    kube.wait_for(
        "the default ServiceAccount", lambda: kube.core.list_namespaced_service_account(namespace).items
    )
    project = Project(folder, namespace, kube, {"KUBECONFIG": kubeconfig}, [])
    yield project
    state_file = folder / ".taoplan" / "state.json"
    if state_file.exists():  # a failed test may leave forwarders: stop exactly those it recorded
        for record in json.loads(state_file.read_text())["services"].values():
            if record["platform"] == "kubernetes" and record.get("host_port"):
                spec = forward_spec(record["host_port"], namespace, record["job_id"], 8080)
                close_forwarder(record["extra"].get("tunnel_pid"), spec)
    kube.core.delete_namespace(namespace, grace_period_seconds=0)
    with contextlib.suppress(OSError):  # containers of a local-docker service the test started
        found = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=taoplan.project={folder.name}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if found:
            subprocess.run(["docker", "rm", "-f", *found], capture_output=True)


def readiness(url: str) -> int:
    return httpx.get(url + "/api/v1/health/readiness", timeout=5, trust_env=False).status_code


def request(project: Project, name: str, prompt: str) -> dict[str, Any]:
    run = taoplan(
        "request",
        name,
        "--prompt",
        prompt,
        "--image",
        IMAGE_URL,
        *RL_VALUES,
        cwd=project.folder,
        env=project.env,
        stdin="",
    )
    assert run.code == 0, run.text
    reply: dict[str, Any] = json.loads(run.out)
    return reply


# ------------------------------------------------------------------------------------------ real node


def test_lifecycle_on_a_real_node_plan_apply_heal_replace_destroy(real_node: str, kproject: Project) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    secret_env = {"HF_TOKEN": canary}
    reason = {"network_arch": "cosmos-rl", "model_path": "/models/a", "secrets": ["HF_TOKEN"]}
    kproject.write({"reason": reason}, **REAL_NODE)
    outputs = kproject.outputs

    def run(*args: str) -> Run:
        result = kproject.run(*args, env=secret_env)
        outputs.append(result.text)
        return result

    # ---- plan / apply / second plan empty
    plan = run("plan", "--detailed-exitcode")
    assert plan.code == 2, plan.text
    assert "kubernetes: 1 nvidia.com/gpu: fits" in plan.out
    apply = run("apply", "--auto-approve")
    assert apply.code == 0, apply.text
    rows = kproject.status()
    row = rows["reason"]
    assert (row["state"], row["ready"]) == ("ready", True)
    assert readiness(row["host_url"]) == 200
    assert request(kproject, "reason", "hello")["model_path"] == "/models/a"
    again = run("plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out, again.text

    # ---- what runs is exactly what was rendered, applied server-side by "taoplan"
    objs = kproject.objects()
    [dep], [svc], [sec] = objs["deployments"], objs["services"], objs["secrets"]
    job = row["job_id"]
    for obj in (dep, svc, sec):
        labels = obj["metadata"]["labels"]
        assert labels["taoplan.io/job-id"] == job and labels["taoplan.io/service"] == "reason"
        assert labels["taoplan.io/lineage"] == kproject.state()["lineage"]
        managers = {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}
        assert ("taoplan", "Apply") in managers
    rendered = run("render").out
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert json.dumps(container["args"][2])[1:-1] in rendered  # byte-identical inner command
    [pod] = objs["pods"]
    assert pod["spec"]["nodeName"] == "taoplan-node-0" and pod["status"]["phase"] == "Running"
    assert base64.b64decode(sec["data"]["HF_TOKEN"]).decode() == canary  # only here

    # ---- the recorded port-forward: killed, it is reopened and recorded again
    [pid] = forwarder_pids(kproject.state())
    os.kill(pid, signal.SIGKILL)
    kproject.kube.wait_for("the forwarder to die", lambda: not alive(pid))
    row = kproject.status()["reason"]
    assert row["state"] == "ready", row
    [new_pid] = forwarder_pids(kproject.state())
    assert new_pid != pid and alive(new_pid)
    assert readiness(row["host_url"]) == 200

    # ---- a pod deleted out of band: the Deployment replaces it, apply waits for it, nothing else changes
    old_pod = pod["metadata"]["name"]
    kproject.kube.core.delete_namespaced_pod(old_pod, kproject.namespace)
    kproject.kube.wait_for(
        "the old pod to go",
        lambda: old_pod not in {p["metadata"]["name"] for p in kproject.objects()["pods"]},
    )
    heal = run("apply", "--auto-approve")
    assert heal.code == 0, heal.text
    [pod] = kproject.objects()["pods"]
    assert pod["metadata"]["name"] != old_pod
    assert kproject.status()["reason"]["job_id"] == job  # healed in place, not replaced
    assert request(kproject, "reason", "after heal")["prompt"] == "after heal"
    assert "No changes." in run("plan").out

    # ---- a spec change: a new Deployment is Ready before the old one is deleted
    kproject.write({"reason": {**reason, "model_path": "/models/b"}}, **REAL_NODE)
    plan = run("plan", "--json")
    [change] = json.loads(plan.out)["changes"]
    assert change["action"] == "replace"
    assert "rolling: needs 1 more GPU during the rollout; 3 are free" in change["reasons"]
    apply = run("apply", "--auto-approve")
    assert apply.code == 0, apply.text
    row = kproject.status()["reason"]
    assert row["job_id"] != job and row["ready"] is True
    assert request(kproject, "reason", "after replace")["model_path"] == "/models/b"
    assert not any(kproject.objects(f"taoplan.io/job-id={job}").values())  # the old job's objects are gone
    journal = [
        json.loads(x) for x in (kproject.folder / ".taoplan" / "journal.jsonl").read_text().splitlines()
    ]
    steps = [
        (e["phase"], e.get("action"), e.get("job_id"))
        for e in journal
        if e["phase"] in ("executed", "outcome")
    ]
    started = steps.index(("executed", "start", row["job_id"]))
    ready = steps.index(("outcome", "replace", row["job_id"]))
    stopped = steps.index(("executed", "stop-old", job))
    assert started < ready < stopped

    # ---- destroy: no object with our labels, no forwarder, no registry entry
    pids = forwarder_pids(kproject.state())
    destroy = run("destroy", "--auto-approve")
    assert destroy.code == 0, destroy.text
    assert not any(kproject.objects().values())
    assert not any(kproject.kube.labelled(kproject.namespace, MANAGED).values())
    assert not any(alive(p) for p in pids)
    registry = Path(os.environ["TAO_INF_MS_STATE"])
    assert not registry.exists() or json.loads(registry.read_text() or "{}") == {}

    # ---- the canary never left the Secret object
    assert all(canary not in text for text in outputs)
    for path in (kproject.folder / ".taoplan").rglob("*"):
        if path.is_file():
            assert canary not in path.read_text(errors="replace"), path
    assert canary not in json.dumps([dep, svc]) and canary not in json.dumps(sec["metadata"])


def test_fatal_conditions_are_reported_with_their_reason(real_node: str, kproject: Project) -> None:
    services = {
        # more GPUs than any node has: the scheduler's own message
        "big": {"network_arch": "cosmos-rl", "model_path": "/models/big", "num_gpus": 5},
        # the server cannot even start: CrashLoopBackOff, with the exit code
        "crash": {
            "network_arch": "cosmos-rl",
            "model_path": "/models/c",
            "env": {"PYTHONHOME": "/nonexistent"},
        },
        # the model load fails: the readiness reason model_load_failed is fatal
        "loadfail": {
            "network_arch": "cosmos-rl",
            "model_path": "/models/l",
            "env": {"TAO_FAKE_LOAD_FAIL": "disk on fire"},
        },
        # an image no registry has: the kubelet's pull error
        "nopull": {
            "network_arch": "cosmos-rl",
            "model_path": "/models/n",
            "image": "localhost/taoplan/absent:1",
        },
    }
    kproject.write(services, timeout=25, **REAL_NODE)
    plan = kproject.run("plan")
    assert "kubernetes: 5 nvidia.com/gpu: does NOT fit" in plan.out, plan.text
    doctor = kproject.run("doctor")
    assert doctor.code == 1
    assert "FAIL kubernetes: GPUs: 8 nvidia.com/gpu requested (largest 5)" in doctor.out
    # more GPUs than any node has: the plan's verdict, and apply starts nothing
    apply = kproject.run("apply", "--auto-approve")
    assert apply.code == 1, apply.text
    assert "Error: big: cannot fit: needs 5 nvidia.com/gpu on one place; the largest place (" in apply.err
    assert "Error: nothing was started" in apply.err and not any(kproject.objects().values())
    del services["big"]
    kproject.write(services, timeout=25, **REAL_NODE)
    apply = kproject.run("apply", "--auto-approve")
    assert apply.code == 3, apply.text
    err = apply.err
    assert "crash: create failed: exited: workload exited with code 1" in err
    assert "loadfail: create failed: model_load_failed: Model failed to load: disk on fire" in err
    assert "nopull: create failed:" in err and "localhost/taoplan/absent:1" in err
    assert "ImagePullBackOff" in err or "ErrImagePull" in err
    rows = kproject.status()
    assert rows["loadfail"]["state"] == "failed"
    # a crash-looping container is briefly "running" between restarts: status shows the loop most of
    # the time, so look a few times (bounded) rather than at one instant
    for _ in range(20):
        if rows["crash"]["state"] == "exited":
            break
        time.sleep(1)
        rows = kproject.status()
    assert rows["crash"]["state"] == "exited", rows["crash"]
    assert rows["crash"]["detail"] == "exit code 1"
    destroy = kproject.run("destroy", "--auto-approve")
    assert destroy.code == 0, destroy.text
    assert not any(kproject.objects().values())


def test_local_docker_and_kubernetes_in_one_apply(real_node: str, kproject: Project) -> None:
    kproject.write(
        {
            "on-k8s": {"network_arch": "cosmos-rl", "model_path": "/models/k"},
            "on-docker": {"network_arch": "cosmos-rl", "model_path": "/models/d", "platform": "local-docker"},
        },
        **REAL_NODE,
    )
    apply = kproject.run("apply", "--auto-approve")
    assert apply.code == 0, apply.text
    rows = kproject.status()
    assert {r["platform"] for r in rows.values()} == {"kubernetes", "local-docker"}
    for name, row in rows.items():
        assert row["ready"] is True, row
        assert request(kproject, name, f"hi {name}")["model_path"] == f"/models/{name.split('-')[1][0]}"
    assert "No changes." in kproject.run("plan").out
    destroy = kproject.run("destroy", "--auto-approve")
    assert destroy.code == 0, destroy.text
    assert not any(kproject.objects().values())
    docker = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=taoplan.project={kproject.name}"],
        capture_output=True,
        text=True,
    )
    assert docker.stdout.strip() == ""


# ------------------------------------------------------------------------------------------ kwok level


def dry_run(
    kproject: Project, monkeypatch: pytest.MonkeyPatch, namespace: str | None = None, service: str = "svc"
) -> list[str]:
    """The platform's server-side dry run of one service, as `plan --server-dry-run` would call it."""
    from taoplan.engine.workspace import Workspace
    from taoplan.platforms.base import Placement
    from taoplan.spec.deployment import build_deployment

    monkeypatch.setenv("KUBECONFIG", kproject.env["KUBECONFIG"])
    ws = Workspace.open(kproject.folder / "services.yaml")
    state = ws.store.load()
    want = ws.desired()[service]
    platform: Any = ws.platform("kubernetes", state.lineage)
    if namespace is not None:
        platform.config = platform.config.model_copy(update={"namespace": namespace})
    d = build_deployment(ws, want, str(uuid.uuid4()), state.lineage)
    placement = Placement(host_port=8080)
    problems: list[str] = platform.dry_run(d, placement, platform.render(d, placement))
    return problems


def test_pull_secret_doctor_and_server_dry_run(kproject: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.client import V1Secret

    nvcr = "nvcr.io/nvidia/tao/tao-toolkit:6.25.10-pyt"
    kproject.write(
        {"svc": {"network_arch": "cosmos-rl", "model_path": "/models/s", "image": nvcr}},
        image_pull_secret="ngc-pull",
        **KWOK,
    )
    doctor = kproject.run("doctor")
    assert doctor.code == 1
    assert (
        "FAIL kubernetes: pull secret: image pull secret 'ngc-pull' does not exist in namespace" in doctor.out
    )
    for line in ("API server", "permissions", "namespace", "GPUs"):
        assert f"ok   kubernetes: {line}: " in doctor.out, doctor.out

    planned = kproject.run("plan", "--server-dry-run")
    assert planned.code == 1, planned.text
    [problem] = [line for line in planned.err.splitlines() if line.startswith("Error: server dry run: ")]
    assert "image pull secret 'ngc-pull' does not exist" in problem
    # admission errors come from the API server itself
    [missing_ns, *_] = dry_run(kproject, monkeypatch, "tp-absent")
    assert 'namespaces "tp-absent" not found' in missing_ns
    assert not any(kproject.objects().values())  # a dry run stores nothing

    auth = base64.b64encode(b'{"auths":{"nvcr.io":{"username":"$oauthtoken","password":"x"}}}').decode()
    kproject.kube.core.create_namespaced_secret(
        kproject.namespace,
        V1Secret(
            metadata={"name": "ngc-pull"},
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": auth},
        ),
    )
    planned = kproject.run("plan", "--server-dry-run")
    assert planned.code == 0, planned.text
    assert "Server dry run: every platform accepts what apply would start." in planned.out
    doctor = kproject.run("doctor")
    assert doctor.code == 0, doctor.out
    assert "ok   kubernetes: pull secret: ngc-pull exists" in doctor.out

    kproject.write({"svc": {"network_arch": "cosmos-rl", "model_path": "/models/s", "image": nvcr}}, **KWOK)
    doctor = kproject.run("doctor")
    assert "image_pull_secret is required for nvcr.io/nvidia/tao/tao-toolkit:6.25.10-pyt" in doctor.out


def test_nodeport_service_address_on_kwok_nodes(kproject: Project) -> None:
    """access: service gives the Service's own address. The kwok pods do not answer (nothing runs in
    them, and the lab has no kube-proxy), so readiness cannot pass here: apply reports it, exit 3."""
    kproject.write(
        {"svc": {"network_arch": "cosmos-rl", "model_path": "/models/s", "host_port": 30080}},
        timeout=3,
        access="service",
        service_type="NodePort",
        **KWOK,
    )
    apply = kproject.run("apply", "--auto-approve")
    assert apply.code == 3, apply.text
    assert "timeout: not ready after 3s (last: connecting)" in apply.err
    [svc] = kproject.objects()["services"]
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0]["nodePort"] == 30080
    [pod] = kproject.objects()["pods"]
    assert pod["spec"]["nodeName"].startswith("kwok-node-")  # Running/Ready as kwok reports it
    record = kproject.state()["services"]["svc"]
    assert record["host_url"] == "http://127.0.0.1:30080"  # the kwok nodes' InternalIP, the nodePort
    assert "tunnel_pid" not in record["extra"]
    assert kproject.run("destroy", "--auto-approve").code == 0
    assert not any(kproject.objects().values())


def test_admission_errors_in_dry_run_and_apply_leave_nothing_behind(
    kproject: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ValidatingAdmissionPolicy (CEL, evaluated by the API server) refuses one service's Deployment."""
    from kubernetes.client import AdmissionregistrationV1Api

    api = AdmissionregistrationV1Api(kproject.kube.api)
    name = f"deny-{kproject.name}"
    api.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["deployments"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "object.metadata.labels['taoplan.io/service'] != 'denied'",
                        "message": "service 'denied' may not run in this namespace",
                    }
                ],
            },
        }
    )
    api.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": kproject.namespace}}
                },
            },
        }
    )
    try:
        kproject.write(
            {
                "denied": {"network_arch": "cosmos-rl", "model_path": "/models/d", "secrets": ["HF_TOKEN"]},
                "allowed": {"network_arch": "cosmos-rl", "model_path": "/models/a"},
            },
            timeout=3,
            **KWOK,
        )
        monkeypatch.setenv("HF_TOKEN", "not-used")
        problems = kproject.kube.wait_for(
            "the policy to take effect", lambda: dry_run(kproject, monkeypatch, service="denied")
        )
        [problem] = problems
        assert (
            "Deployment tao-denied-" in problem
            and "service 'denied' may not run in this namespace" in problem
        )
        assert dry_run(kproject, monkeypatch, service="allowed") == []
        assert not any(kproject.objects().values())

        apply = kproject.run("apply", "--auto-approve", env={"HF_TOKEN": "not-used"})
        assert apply.code == 3, apply.text
        assert "denied: create failed: denied: server-side apply of Deployment" in apply.err
        assert "service 'denied' may not run in this namespace" in apply.err
        # its Secret and Service went in first and came out again; "allowed" was created (kwok:
        # its pod never answers HTTP, so it times out)
        assert kproject.objects("taoplan.io/service=denied") == {k: [] for k in kproject.objects()}
        assert len(kproject.objects("taoplan.io/service=allowed")["deployments"]) == 1
    finally:
        api.delete_validating_admission_policy_binding(name)
        api.delete_validating_admission_policy(name)
    assert kproject.run("destroy", "--auto-approve").code == 0
    assert not any(kproject.objects().values())


def test_plan_fit_on_kwok_gpu_nodes_cannot_fit_five_and_queues_when_full(kproject: Project) -> None:
    """The kwok nodes have 4 nvidia.com/gpu each: 5 on one pod cannot fit; once pods outside taoplan hold
    every GPU, one more queues, naming them."""
    kproject.write({"big": {"network_arch": "cosmos-rl", "model_path": "/models/big", "num_gpus": 5}}, **KWOK)
    plan = kproject.run("plan", "--json")
    assert plan.code == 0, plan.text
    [big] = json.loads(plan.out)["changes"]
    assert big["fit"]["verdict"] == "cannot fit"
    assert re.fullmatch(
        r"needs 5 nvidia.com/gpu on one place; the largest place \(kwok-node-\d\) has 4", big["fit"]["detail"]
    ), big
    apply = kproject.run("apply", "--auto-approve")
    assert apply.code == 1 and "Error: big: cannot fit: needs 5 nvidia.com/gpu" in apply.err, apply.text
    assert not any(kproject.objects().values())

    nodes = sorted(n.metadata.name for n in kproject.kube.core.list_node(label_selector="type=kwok").items)
    for i, node in enumerate(nodes):
        kproject.kube.core.create_namespaced_pod(
            kproject.namespace,
            {
                "metadata": {"name": f"filler-{i}"},
                "spec": {
                    "nodeName": node,
                    "containers": [
                        {"name": "x", "image": "none", "resources": {"limits": {"nvidia.com/gpu": "4"}}}
                    ],
                },
            },
        )
    kproject.write({"third": {"network_arch": "cosmos-rl", "model_path": "/models/t"}}, **KWOK)
    [third] = json.loads(kproject.run("plan", "--json").out)["changes"]
    assert third["fit"]["verdict"] == "queues", third
    detail = third["fit"]["detail"]
    assert detail.startswith("needs 1 nvidia.com/gpu, 0 free now on one place; "), detail
    for i, node in enumerate(nodes):
        assert f"4 nvidia.com/gpu held by pod {kproject.namespace}/filler-{i} on {node}" in detail, detail
    apply = kproject.run("apply", "--auto-approve")
    assert apply.code == 1 and "(apply --allow-queue lets it wait)" in apply.err, apply.text
    assert not any(kproject.objects().values())


def test_phase_timings_of_a_pod_with_a_3s_model_load(real_node: str, kproject: Project) -> None:
    slow = {
        "network_arch": "tao-dataservices",
        "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct",
        "env": {"TAO_FAKE_LOAD_SECONDS": "3"},
    }
    kproject.write({"slow": slow}, **REAL_NODE)
    apply = kproject.run("apply", "--auto-approve")
    assert apply.code == 0, apply.text
    row = kproject.status()["slow"]
    assert_phases_ordered(row, "container start", "model loading", "ready", "first answer")
    assert kproject.run("destroy", "--auto-approve").code == 0
