"""Moving a service between platforms while it serves: local Docker -> the Slurm lab (a batch job
reached through taoplan's ssh tunnel) -> the Kubernetes lab's real kubelet node (a pod reached
through taoplan's port-forward). Only ``platform`` changes; the official `openai` client sends about
20 requests per second through one `taoplan gateway` the whole time, and none may fail."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import TEST_IMAGE, labelled
from tests.e2e.gateway_support import rows
from tests.e2e.rollout_support import Served
from tests.e2e.test_kubernetes import (  # noqa: F401 - the Kubernetes lab's fixtures
    REAL_NODE,
    Project,
    kproject,
    kubeconfig,
    real_node,
)
from tests.e2e.test_slurm import live_jobs, slurm_lab, slurm_settings  # noqa: F401 - the Slurm lab's fixture

pytestmark = [pytest.mark.kubernetes, pytest.mark.slurm]

CHAT = {  # an arch with a port flag: on the lab's node (this host's network) it takes a free port
    "network_arch": "tao-dataservices",
    "model_path": "hf_model://Qwen/Qwen3-VL-8B-Instruct",
    "env": {"TAO_FAKE_LOAD_SECONDS": "1.5", "TAO_FAKE_INFER_SECONDS": "0.1"},
}


def write_on(project: Project, platform: str) -> None:
    kubernetes = {"namespace": project.namespace, "shm_size": "64Mi", **REAL_NODE}
    lines = [
        "version: 1",
        f"project: {project.name}",
        "defaults:",
        f"  image: {TEST_IMAGE}",
        "  readiness: {timeout: 180}",
        "platforms:",
        '  local-docker: {"gpus": "none", "shm_size": "64m"}',
        f"  slurm: {json.dumps(slurm_settings(project.name))}",
        f"  kubernetes: {json.dumps(kubernetes)}",
        "gateway: {}",
        "services:",
        f"  chat: {json.dumps({**CHAT, 'platform': platform})}",
    ]
    (project.folder / "services.yaml").write_text("\n".join(lines) + "\n")


def where(project: Project) -> list[tuple[str, str]]:
    state = project.state()
    assert state["retiring"] == {}, state["retiring"]
    return [(key, r["platform"]) for key, r in state["services"].items()]


def test_a_service_moves_docker_to_slurm_to_kubernetes_with_zero_failed_requests(
    real_node: str,  # noqa: F811
    kproject: Project,  # noqa: F811
    slurm_lab: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in slurm_lab.items():
        monkeypatch.setenv(key, value)
    kproject.env.update(slurm_lab)
    write_on(kproject, "local-docker")
    first = kproject.run("apply", "--auto-approve")
    try:
        assert first.code == 0, first.text
        with (
            Served(kproject.folder, env={**os.environ, **kproject.env}, image=None) as served,
            served.load() as load,
        ):
            load.wait_for(20)
            for platform in ("slurm", "kubernetes"):
                write_on(kproject, platform)
                plan = kproject.run("plan")
                assert "rolling: moving from" in plan.out, plan.text
                moved = kproject.run("apply", "--auto-approve")
                assert moved.code == 0, moved.text
                assert where(kproject) == [("chat", platform)]
                load.wait_for(20)
        assert not load.failures, load.summary()
        assert len(load.model_paths()) == 1, load.model_paths()

        assert labelled(kproject.name) == [], "the Docker container was removed after the move"
        assert live_jobs(kproject.name) == [], "the Slurm job was cancelled after the move"
        answered = [r.platform for r in rows(kproject.folder / ".taoplan") if r.service == "chat"]
        assert all(r.status == 200 for r in rows(kproject.folder / ".taoplan"))
        order = list(dict.fromkeys(answered))
        assert order == ["local-docker", "slurm", "kubernetes"], order
        registry = json.loads((kproject.folder.parent / "registry.json").read_text())
        assert [e["platform"] for k, e in registry.items() if k != "latest"] == ["kubernetes"]
    finally:
        destroy = kproject.run("destroy", "--auto-approve")
    assert destroy.code == 0, destroy.text
    assert not any(kproject.objects().values())
