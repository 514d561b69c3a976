"""The Kubernetes objects are what apply sends: rendered from templates, compared with reviewed snapshots.

Also the pure parts of the platform: settings validation, how a pod's status is read, and the GPU
arithmetic that plan and doctor show. Nothing here talks to a cluster (tests/e2e/test_kubernetes.py does).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from taoplan import labels
from taoplan.platforms.base import Deployment, Placement, PlatformContext
from taoplan.platforms.kubernetes.capacity import capacity, eligible
from taoplan.platforms.kubernetes.forward import forward_spec, parse_forward_spec
from taoplan.platforms.kubernetes.names import object_name
from taoplan.platforms.kubernetes.objects import REDACTED
from taoplan.platforms.kubernetes.platform import Kubernetes
from taoplan.platforms.kubernetes.pods import pod_state
from taoplan.spec import payload
from taoplan.spec.config import ServiceSpec
from taoplan.spec.platform_settings import KubernetesConfig
from taoplan.spec.references import load_references

REFS = load_references()
JOB = "11111111-2222-4333-8444-555555555555"
SNAPSHOTS = Path(__file__).parent / "snapshots"
TOLERATE = [{"key": "taoplan.io/real-node", "operator": "Exists", "effect": "NoSchedule"}]


def deployment(
    env: dict[str, str] | None = None, gpus: int = 2, secrets: tuple[str, ...] = ("HF_TOKEN", "WANDB_API_KEY")
) -> Deployment:
    spec = ServiceSpec.model_validate(
        {
            "network_arch": "tao-dataservices",
            "model_path": "/models/it's here",
            "num_gpus": gpus,
            "env": env if env is not None else {"TAO_LOG_LEVEL": "INFO"},
            "secrets": list(secrets),
        },
        context={"refs": REFS},
    )
    return Deployment(
        service="reason",
        job_id=JOB,
        network_arch="tao-dataservices",
        image="nvcr.io/nvidia/tao/x:1",
        spec_hash="abc123",
        num_gpus=gpus,
        inner_command=payload.inner_command(spec, JOB, "kubernetes", REFS),
        env={**spec.env, **payload.env_payload("kubernetes", JOB, REFS)},
        secret_names=secrets,
        labels=labels.for_deployment("demo", "lin-1", "reason", JOB, "abc123"),
        host_port=None,
        spec=spec,
    )


def platform(**settings: Any) -> Kubernetes:
    ctx = PlatformContext(project="demo", lineage="lin-1", state_dir=Path("/nonexistent"), refs=REFS)
    config = KubernetesConfig.model_validate(
        {
            "namespace": "tao",
            "image_pull_secret": "ngc-pull",
            "node_selector": {"nvidia.com/gpu.present": "true"},
            "tolerations": TOLERATE,
            **settings,
        }
    )
    return Kubernetes(config, ctx)


def rendered(**settings: Any) -> dict[str, str]:
    return {a.name: a.content for a in platform(**settings).render(deployment(), Placement(host_port=8081))}


@pytest.mark.parametrize("name", ["secret.yaml", "service.yaml", "deployment.yaml"])
def test_objects_match_reviewed_snapshots(name: str) -> None:
    assert rendered()[name] == (SNAPSHOTS / f"kubernetes-{name}").read_text()


def test_nodeport_service_with_a_fixed_port_matches_its_snapshot() -> None:
    k8s = platform(access="service", service_type="NodePort")
    d = deployment()
    artifacts = {a.name: a.content for a in k8s.render(d, Placement(host_port=30080))}
    assert artifacts["service.yaml"] == (SNAPSHOTS / "kubernetes-nodeport-service.yaml").read_text()


def test_apply_sends_the_rendered_objects_with_the_byte_identical_inner_command() -> None:
    k8s, d = platform(), deployment()
    artifacts = k8s.render(d, Placement(host_port=8081))
    objs = k8s.objects(artifacts, fill_secrets=False)
    assert [o["kind"] for o in objs] == ["Secret", "Service", "Deployment"]
    parsed = [yaml.safe_load(a.content) for a in artifacts]
    assert {o["kind"]: o for o in objs} == {o["kind"]: o for o in parsed}
    dep = objs[2]
    [container] = dep["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["/bin/bash", "-c", d.inner_command]
    assert "command" not in container  # the image's ENTRYPOINT stays, as with docker run
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 2}}
    assert container["readinessProbe"]["httpGet"] == {"path": "/api/v1/health/readiness", "port": "http"}
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 3600
    pod = dep["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "ngc-pull"}]
    assert pod["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}]
    assert pod["tolerations"] == TOLERATE
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "tao-reason-11111111-env", "key": "HF_TOKEN"}},
    }
    assert env["TAO_EXECUTION_BACKEND"]["value"] == "local-k8s"
    for obj in objs:
        meta = obj["metadata"]
        assert meta["namespace"] == "tao"
        assert meta["labels"] == {
            "app.kubernetes.io/managed-by": "taoplan",
            "taoplan.io/project": "demo",
            "taoplan.io/service": "reason",
            "taoplan.io/job-id": JOB,
            "taoplan.io/lineage": "lin-1",
            "tao-job": JOB,
        }
        assert meta["annotations"]["taoplan.io/spec-hash"] == "abc123"
    assert dep["spec"]["template"]["metadata"]["labels"] == dep["metadata"]["labels"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert objs[1]["spec"]["selector"] == selector
    assert selector["taoplan.io/job-id"] == JOB


def test_secret_values_come_from_the_environment_in_memory_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "canary-value-123")
    monkeypatch.setenv("WANDB_API_KEY", "canary-value-456")
    k8s = platform()
    artifacts = k8s.render(deployment(), Placement(host_port=8081))
    assert not any("canary-value" in a.content for a in artifacts)
    [secret] = [o for o in k8s.objects(artifacts, fill_secrets=True) if o["kind"] == "Secret"]
    assert secret["stringData"] == {"HF_TOKEN": "canary-value-123", "WANDB_API_KEY": "canary-value-456"}
    assert secret["type"] == "Opaque"
    assert not any("canary-value" in a.content for a in artifacts)  # the artifacts were not touched
    [redacted] = [o for o in k8s.objects(artifacts, fill_secrets=False) if o["kind"] == "Secret"]
    assert redacted["stringData"] == {"HF_TOKEN": REDACTED, "WANDB_API_KEY": REDACTED}


def test_a_secret_file_holding_a_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from taoplan.errors import PlatformError
    from taoplan.platforms.base import Artifact

    k8s = platform()
    artifacts = k8s.render(deployment(), Placement(host_port=8081))
    tampered = [
        Artifact(a.name, a.content.replace(f'"HF_TOKEN": "{REDACTED}"', '"HF_TOKEN": "typed-in"'))
        for a in artifacts
    ]
    with pytest.raises(PlatformError, match="holds a value for HF_TOKEN"):
        k8s.objects(tampered, fill_secrets=True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(PlatformError, match="HF_TOKEN is not set"):
        k8s.objects(artifacts, fill_secrets=True)


def test_no_secret_object_without_secrets() -> None:
    d = deployment(secrets=())
    names = [a.name for a in platform().render(d, Placement(host_port=8081))]
    assert names == ["service.yaml", "deployment.yaml"]


def test_hostile_env_values_reach_the_pod_byte_for_byte() -> None:
    nasty = 'it\'s "quoted" $(touch pwned) `x`; {a: b}\n- not: a list\n# not a comment\ttab: "'
    k8s = platform()
    d = deployment(env={"NASTY": nasty, "ON": "yes", "NUM": "0x10"})
    dep = next(
        o for o in k8s.objects(k8s.render(d, Placement()), fill_secrets=False) if o["kind"] == "Deployment"
    )
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NASTY"] == nasty
    assert (env["ON"], env["NUM"]) == ("yes", "0x10")  # strings, not YAML 1.1 booleans or numbers


def test_names_are_dns_labels_that_fit_every_kind() -> None:
    name = object_name("a" * 40, JOB)
    assert len(name) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)
    assert object_name("9lives", JOB).startswith("tao-")  # a Service name must start with a letter


def test_settings_are_validated() -> None:
    for bad in (
        {"namespace": "Bad_NS"},
        {"service_type": "ExternalName"},
        {"access": "ingress"},
        {"shm_size": "16 GB"},
        {"tolerations": [{"key": "k", "operator": "Maybe"}]},
        {"node_selector": {"ok": "not ok!"}},
        {"namespaces": "typo"},
        {"gpu_resource": "nvidia.com/gpu!"},
    ):
        with pytest.raises(ValidationError):
            KubernetesConfig.model_validate(bad)
    assert KubernetesConfig().model_dump() == {
        "kubeconfig": None,
        "context": None,
        "namespace": "default",
        "image_pull_secret": None,
        "service_type": "ClusterIP",
        "access": "port-forward",
        "gpu_resource": "nvidia.com/gpu",
        "node_selector": {},
        "tolerations": [],
        "shm_size": "16Gi",
    }


def test_forward_spec_round_trips() -> None:
    spec = forward_spec(8081, "tao", JOB, 8080)
    assert parse_forward_spec(spec) == (8081, "tao", JOB, 8080)
    with pytest.raises(ValueError):
        parse_forward_spec("0.0.0.0:1:ns/x:2")


# ------------------------------------------------------------------------------------------ pod status


def pod(
    phase: str = "Running",
    *,
    ready: bool = False,
    scheduled: dict[str, str] | None = None,
    cs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled:
        conditions.append({"type": "PodScheduled", **scheduled})
    status: dict[str, Any] = {"phase": phase, "conditions": conditions}
    if cs is not None:
        status["containerStatuses"] = [cs]
    return {"metadata": {"name": "p-1"}, "spec": {"nodeName": "n1"}, "status": status}


def test_pod_status_in_the_core_words() -> None:
    unschedulable = pod(
        "Pending",
        scheduled={
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
        },
    )
    state = pod_state(unschedulable)
    assert (state.status, state.fatal) == ("pending", True)
    assert state.detail == "Unschedulable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu."

    back_off = pod(
        "Pending",
        cs={"state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}}},
    )
    assert pod_state(back_off).fatal and pod_state(back_off).detail.startswith("ImagePullBackOff: ")
    first_pull_error = pod("Pending", cs={"state": {"waiting": {"reason": "ErrImagePull"}}})
    assert not pod_state(first_pull_error).fatal

    crash = pod(
        cs={
            "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}},
        }
    )
    state = pod_state(crash)
    assert (state.status, state.exit_code, state.fatal) == ("exited", 2, True)
    assert "restarted 3 time(s), last exit code 2, Error" in state.detail

    assert pod_state(pod(ready=True, cs={"started": True, "state": {"running": {}}})).status == "running"
    loading = pod_state(pod(cs={"started": False, "state": {"running": {}}}))
    assert (loading.status, loading.detail) == ("starting", "Running on n1, not Ready (startup probe)")
    assert (
        pod_state(pod("Pending", cs={"state": {"waiting": {"reason": "ContainerCreating"}}})).status
        == "pending"
    )
    evicted = pod("Failed")
    evicted["status"].update(reason="Evicted", message="low on memory")
    assert pod_state(evicted).detail == "pod p-1 Evicted: low on memory"


# ------------------------------------------------------------------------------------------ GPU arithmetic


def node(
    name: str,
    gpus: int,
    *,
    taint: bool = False,
    ready: bool = True,
    node_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": node_labels or {}},
        "spec": {"taints": [{"key": "taoplan.io/real-node", "value": "true", "effect": "NoSchedule"}]}
        if taint
        else {},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def gpu_pod(on: str, gpus: int, phase: str = "Running") -> dict[str, Any]:
    return {
        "spec": {"nodeName": on, "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
        "status": {"phase": phase},
    }


def test_capacity_counts_eligible_nodes_minus_running_pods() -> None:
    nodes = [node("a", 4), node("b", 4), node("tainted", 8, taint=True), node("down", 8, ready=False)]
    pods = [gpu_pod("a", 3), gpu_pod("b", 1), gpu_pod("b", 4, phase="Succeeded"), gpu_pod("tainted", 1)]
    plain = KubernetesConfig()
    cap = capacity(nodes, pods, plain)
    assert cap.free == {"a": 1, "b": 3}
    assert cap.fits(3) and not cap.fits(4)
    assert cap.describe(3) == "3 nvidia.com/gpu: fits (3 free on b; 4 free on 2 eligible node(s))"
    assert "does NOT fit" in cap.describe(4) and "Unschedulable" in cap.describe(4)
    tolerant = KubernetesConfig.model_validate({"tolerations": TOLERATE})
    assert capacity(nodes, pods, tolerant).free == {"a": 1, "b": 3, "tainted": 7}
    only = KubernetesConfig.model_validate({"tolerations": TOLERATE, "node_selector": {"pool": "x"}})
    assert not eligible(node("a", 4), only)
    assert eligible(node("t", 1, taint=True, node_labels={"pool": "x"}), only)


def test_replace_order_follows_what_the_cluster_can_hold() -> None:
    from taoplan.engine import rollout
    from tests.unit.test_planner import want

    k8s = platform()
    assert k8s.replace_strategy(1, None) == (True, "")  # the GPUs free decide (engine.rollout)
    assert k8s.replace_strategy(1, 8081)[0] is False  # the local port cannot be held twice
    k8s._capacity = capacity([node("a", 4)], [gpu_pod("a", 2)], KubernetesConfig())
    shared = k8s._capacity.shared(KubernetesConfig())
    two = rollout.choose(want("a", num_gpus=2), (True, ""), shared, routed=False)
    assert two == rollout.Choice(True, "rolling: needs 2 more GPUs during the rollout; 2 are free")
    three = rollout.choose(want("a", num_gpus=3), (True, ""), shared, routed=False)
    assert not three.rolling and three.why == "recreate: only 4 GPUs on this host"
    assert "3 nvidia.com/gpu: does NOT fit" in k8s.describe(deployment(gpus=3).spec)[1]
