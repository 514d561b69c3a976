"""Generic model servers (``server:``) rendered on every platform: reviewed snapshots per type and
platform, the inner command byte-identical everywhere, and no TAO payload or registry for them.

Regenerate a snapshot on purpose with TAOPLAN_UPDATE_SNAPSHOTS=1 (then review the diff)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from taoplan.platforms.base import Placement
from taoplan.spec.config import load_services
from taoplan.spec.deployment import Deployment, build_deployment
from taoplan.spec.desired import build_desired
from taoplan.spec.references import References, load_references
from tests.unit import test_kubernetes_render, test_lepton_render, test_render, test_slurm_render

REFS = load_references()
SNAPSHOTS = Path(__file__).parent / "snapshots" / "servers"
TYPES = ["vllm", "sglang", "trtllm", "nim", "llamacpp", "custom"]
SERVICES = """\
version: 1
project: demo
services:
  vllm:
    server: {type: vllm, model: meta-llama/Llama-3.1-8B-Instruct, served_name: llama-8b,
             args: ["--max-model-len", "8192"]}
    num_gpus: 2
    secrets: [HF_TOKEN]
  sglang:
    server: {type: sglang, model: Qwen/Qwen2.5-7B-Instruct, args: ["--mem-fraction-static", "0.8"]}
    num_gpus: 2
  trtllm:
    server: {type: trtllm, model: /models/llama-engine}
    num_gpus: 4
  nim:
    server: {type: nim, served_name: meta/llama-3.1-8b-instruct}
    image: nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3.3
    secrets: [NGC_API_KEY]
  llamacpp:
    server: {type: llamacpp, model: /models/gemma-3-270m-q4_k_m.gguf, served_name: gemma, args: ["-c", "2048"]}
    image: localhost/taoplan/llamacpp-test:1
  custom:
    server: {type: custom, command: ["python3", "-m", "my_server", "--listen", "0.0.0.0:9000"], port: 9000,
             readiness_path: /ready}
    image: run-cosmos:latest
"""


@dataclass(frozen=True)
class _Ws:
    project: str
    refs: References


def deployments(tmp_path: Path) -> dict[str, Deployment]:
    path = tmp_path / "services.yaml"
    path.write_text(SERVICES)
    config = load_services(path, REFS)
    desired = build_desired(config, REFS, {})
    ws = _Ws("demo", REFS)
    return {name: build_deployment(ws, want, f"{name}-job1", "lin-1") for name, want in desired.items()}


def renderers() -> dict[str, object]:
    return {
        "local-docker": lambda d: test_render.platform(gpus="nvidia").render(d, Placement(host_port=8081)),
        "slurm-pyxis": lambda d: test_slurm_render.platform(container_runtime="pyxis").render(
            d, _slurm_placement(d)
        ),
        "slurm-docker": lambda d: test_slurm_render.platform(container_runtime="docker").render(
            d, _slurm_placement(d)
        ),
        "slurm-none": lambda d: test_slurm_render.platform(container_runtime="none").render(
            d, _slurm_placement(d)
        ),
        "kubernetes": lambda d: test_kubernetes_render.platform().render(d, Placement(host_port=8081)),
        "lepton": lambda d: test_lepton_render.platform().render(d, test_lepton_render.PLACED),
    }


def _slurm_placement(d: Deployment) -> Placement:
    if d.takes_port:
        return Placement(host_port=8081, values={"node_port": 18082, "exclusive": False})
    return Placement(host_port=8081, values={"node_port": d.container_port, "exclusive": True})


@pytest.mark.parametrize("platform", list(renderers()))
@pytest.mark.parametrize("kind", TYPES)
def test_server_renders_match_reviewed_snapshots(tmp_path: Path, platform: str, kind: str) -> None:
    d = deployments(tmp_path)[kind]
    artifacts = renderers()[platform](d)  # type: ignore[operator]
    text = "".join(f"=== {a.name}\n{a.content}" for a in artifacts)
    snapshot = SNAPSHOTS / f"{platform}-{kind}.txt"
    if os.environ.get("TAOPLAN_UPDATE_SNAPSHOTS") == "1" or not snapshot.exists():
        snapshot.write_text(text)
    assert text == snapshot.read_text()
    assert "TAO_API_JOB_ID" not in text and "--docker_env_vars" not in text  # no TAO payload


@pytest.mark.parametrize("kind", TYPES)
def test_inner_command_is_identical_on_every_platform(tmp_path: Path, kind: str) -> None:
    d = deployments(tmp_path)[kind]
    for platform in ("local-docker", "kubernetes", "lepton"):
        artifacts = renderers()[platform](d)  # type: ignore[operator]
        text = "".join(a.content for a in artifacts)
        assert (
            d.inner_command in text or shlex.quote(d.inner_command) in text or _json_in(d.inner_command, text)
        )


def _json_in(command: str, text: str) -> bool:
    import json

    return json.dumps(command)[1:-1] in text


def test_servers_have_their_own_contract_and_no_registry(tmp_path: Path) -> None:
    ds = deployments(tmp_path)
    assert {k: d.container_port for k, d in ds.items()} == {
        "vllm": 8000, "sglang": 30000, "trtllm": 8000, "nim": 8000, "llamacpp": 8080, "custom": 9000,
    }  # fmt: skip
    assert {k: d.readiness_path for k, d in ds.items()} == {
        "vllm": "/health", "sglang": "/health", "trtllm": "/health", "nim": "/v1/health/ready",
        "llamacpp": "/health", "custom": "/ready",
    }  # fmt: skip
    assert not any(d.registry for d in ds.values())
    assert ds["vllm"].readiness is not None and ds["vllm"].readiness.fatal_reasons == []
    assert "--tensor-parallel-size 2" in ds["vllm"].inner_command
    assert "--served-model-name llama-8b" in ds["vllm"].inner_command
    assert "--tp-size 2" in ds["sglang"].inner_command and " --tp " not in ds["sglang"].inner_command
    assert ds["sglang"].served_name == "sglang"  # default: the service name
    assert ds["trtllm"].served_name == "/models/llama-engine"  # trtllm-serve answers to the model
    assert ds["nim"].env["NIM_SERVER_PORT"] == "8000" and not ds["nim"].takes_port
    assert ds["llamacpp"].inner_command.endswith("--alias gemma -c 2048")
    assert ds["vllm"].reset_entrypoint and ds["llamacpp"].reset_entrypoint and not ds["nim"].reset_entrypoint
