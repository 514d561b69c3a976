"""The inner command per arch: exact, shell-safe, identical across platforms, and secret-free."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from taoplan.spec import payload
from taoplan.spec.config import ServiceSpec
from taoplan.spec.references import load_references, resolve_image

REFS = load_references()
JOB = "11111111-2222-4333-8444-555555555555"


def spec(**fields: Any) -> ServiceSpec:
    return ServiceSpec.model_validate(fields, context={"refs": REFS})


def test_cosmos_rl_command_is_exactly_the_skill_form() -> None:
    s = spec(network_arch="cosmos-rl", model_path="hf_model://nvidia/Cosmos-Reason2-8B", secrets=["HF_TOKEN"])
    command = payload.inner_command(s, JOB, "local-docker", REFS)
    job = {
        "job_id": JOB,
        "specs": {"model_path": "hf_model://nvidia/Cosmos-Reason2-8B"},
        "neural_network_name": "cosmos-rl",
    }
    env = {"TAO_EXECUTION_BACKEND": "local-docker", "TAO_API_JOB_ID": JOB, "CLOUD_BASED": "False"}
    q = lambda o: shlex.quote(json.dumps(o, separators=(",", ":")))  # noqa: E731
    assert command == f"umask 0 && cosmos-rl-inference-microservice --job {q(job)} --docker_env_vars {q(env)}"
    assert "HF_TOKEN" not in command


def test_dataservices_gets_port_and_bare_repo_id() -> None:
    s = spec(network_arch="tao-dataservices", model_path="hf_model://Qwen/Qwen3-VL-8B-Instruct")
    argv = shlex.split(payload.inner_command(s, JOB, "local-docker", REFS))
    assert argv[:8] == [
        "umask",
        "0",
        "&&",
        "python",
        "-m",
        "nvidia_tao_core.microservices.handlers.huggingface_inference_microservice_server",
        "--port",
        "8080",
    ]
    assert json.loads(argv[argv.index("--job") + 1])["specs"]["model_path"] == "Qwen/Qwen3-VL-8B-Instruct"


@pytest.mark.parametrize(
    ("model_path", "model_key", "flag", "value"),
    [
        ("hf_model://nvidia/Cosmos-Predict2.5-2B", "base-2b", "--model", "base-2b"),
        ("/ckpt/my model", None, "--checkpoint-path", "/ckpt/my model"),
    ],
)
def test_predict_uses_flags_not_payload(
    model_path: str, model_key: str | None, flag: str, value: str
) -> None:
    s = spec(network_arch="cosmos-predict2.5", model_path=model_path, model_key=model_key, output_dir="/out")
    command = payload.inner_command(s, JOB, "local-docker", REFS)
    argv = shlex.split(command)
    assert command.startswith("umask 0 && cosmos_predict inference_microservice start ")
    assert argv[argv.index(flag) + 1] == value
    assert argv[-4:] == ["--output-dir", "/out", "--port", "8080"]
    assert "--job" not in argv


def test_command_is_byte_identical_across_platforms_but_for_the_backend() -> None:
    s = spec(network_arch="cosmos-rl", model_path="/models/m")
    docker = payload.inner_command(s, JOB, "local-docker", REFS)
    slurm = payload.inner_command(s, JOB, "slurm", REFS)
    assert (
        docker.replace('"TAO_EXECUTION_BACKEND":"local-docker"', '"TAO_EXECUTION_BACKEND":"slurm"') == slurm
    )


def test_hostile_values_stay_data() -> None:
    nasty = '/m/it\'s $(touch /tmp/pwn) `id`; rm -rf / \n"x"'
    s = spec(network_arch="cosmos-predict2.5", model_path=nasty, output_dir="/o/$(id)")
    argv = shlex.split(payload.inner_command(s, JOB, "local-docker", REFS))
    assert argv[argv.index("--checkpoint-path") + 1] == nasty
    assert argv[argv.index("--output-dir") + 1] == "/o/$(id)"


def test_image_resolution_rules_in_order() -> None:
    assert (
        resolve_image("cosmos-rl", "my.registry/x:1", REFS, {"IMAGE_COSMOS_RL": "env/x:2"}).rule
        == "service.image"
    )
    by_env = resolve_image("cosmos-rl", None, REFS, {"IMAGE_COSMOS_RL": "env/x:2"})
    assert (by_env.image, by_env.rule.split(" ")[0]) == ("env/x:2", "env:IMAGE_COSMOS_RL")
    mapped = resolve_image("tao-dataservices", None, REFS, {})
    assert mapped.image == "nvcr.io/nvidia/tao/tao-toolkit:7.1.0-data-services"
    assert mapped.rule == "versions:images.tao_toolkit.data_services via TAO_DATASERVICES"
    fallback = resolve_image("cosmos-rl", None, REFS, {})
    assert fallback.image.startswith("nvcr.io/nvstaging/tao/cosmos-rl:")
    assert "fallback" in fallback.rule
