"""The sbatch script is what apply submits: rendered from the template, compared with reviewed snapshots."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from taoplan import labels
from taoplan.platforms.base import Deployment, Placement, PlatformContext
from taoplan.platforms.slurm.jobs import decode_comment
from taoplan.platforms.slurm.platform import Slurm
from taoplan.platforms.slurm.script import pyxis_image
from taoplan.spec import payload
from taoplan.spec.config import ServiceSpec
from taoplan.spec.platform_settings import SlurmConfig
from taoplan.spec.references import load_references

REFS = load_references()
JOB = "11111111-2222-4333-8444-555555555555"
SNAPSHOTS = Path(__file__).parent / "snapshots"


def deployment(
    arch: str = "tao-dataservices", env: dict[str, str] | None = None, gpus: int = 2
) -> Deployment:
    fields: dict[str, Any] = {
        "network_arch": arch,
        "model_path": "/models/it's here",
        "num_gpus": gpus,
        "env": env if env is not None else {"TAO_LOG_LEVEL": "INFO"},
        "secrets": ["HF_TOKEN", "WANDB_API_KEY"],
    }
    if arch == "cosmos-predict2.5":
        fields["model_key"] = "base-2b"
    spec = ServiceSpec.model_validate(fields, context={"refs": REFS})
    return Deployment(
        service="reason",
        job_id=JOB,
        network_arch=arch,
        image="nvcr.io/nvidia/tao/x:1",
        spec_hash="abc123",
        num_gpus=gpus,
        inner_command=payload.inner_command(spec, JOB, "slurm", REFS),
        env={**spec.env, **payload.env_payload("slurm", JOB, REFS)},
        secret_names=("HF_TOKEN", "WANDB_API_KEY"),
        labels=labels.for_deployment("demo", "lin-1", "reason", JOB, "abc123"),
        host_port=None,
        spec=spec,
        takes_port=payload.takes_port(spec, REFS),
    )


def platform(**settings: Any) -> Slurm:
    ctx = PlatformContext(project="demo", lineage="lin-1", state_dir=Path("/nonexistent"), refs=REFS)
    config = SlurmConfig.model_validate(
        {"partition": "gpu", "account": "tao", "container_mounts": ["/data:/data:ro"], **settings}
    )
    return Slurm(config, ctx)


PLACED = Placement(host_port=8081, values={"node_port": 18082, "exclusive": False})


@pytest.mark.parametrize("runtime", ["pyxis", "docker", "none"])
def test_sbatch_script_matches_reviewed_snapshot(runtime: str) -> None:
    [artifact] = platform(container_runtime=runtime).render(deployment(), PLACED)
    assert artifact.name == "sbatch.sh"
    assert artifact.content == (SNAPSHOTS / f"slurm-{runtime}.sbatch.sh").read_text()
    check = subprocess.run(["bash", "-n"], input=artifact.content, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr


def test_inner_command_is_byte_identical_to_other_platforms_with_only_the_port_moved() -> None:
    d = deployment()
    [artifact] = platform(container_runtime="none").render(d, PLACED)
    moved = payload.inner_command(d.spec, JOB, "slurm", REFS, port=18082)
    assert f"exec /bin/bash -c {shlex.quote(moved)}\n" in artifact.content
    assert moved == d.inner_command.replace("--port 8080", "--port 18082")
    assert "--exclusive" not in artifact.content


def test_an_arch_without_a_port_flag_gets_the_whole_node() -> None:
    d = deployment("cosmos-rl")
    slurm = platform(container_runtime="none")
    [artifact] = slurm.render(d, Placement(host_port=8081, values={"node_port": 8080, "exclusive": True}))
    assert "#SBATCH --exclusive\n" in artifact.content
    assert f"exec /bin/bash -c {shlex.quote(d.inner_command)}\n" in artifact.content  # untouched
    assert "takes no port flag, so the job is --exclusive" in artifact.content
    assert "--exclusive (cosmos-rl takes no port flag" in slurm.describe(d.spec)[0]
    assert "--port, chosen at apply" in slurm.describe(deployment().spec)[0]


def test_secrets_render_by_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "canary-value-123")
    for runtime in ("pyxis", "docker", "none"):
        [artifact] = platform(container_runtime=runtime).render(deployment(), PLACED)
        assert "canary-value-123" not in artifact.content
        assert f"env/{JOB}.env" in artifact.content
    [docker] = platform(container_runtime="docker").render(deployment(), PLACED)
    assert "  --env HF_TOKEN \\\n" in docker.content


def test_labels_ride_in_the_comment_and_the_name_is_the_job_id() -> None:
    [artifact] = platform().render(deployment(), PLACED)
    assert f"#SBATCH --job-name={JOB}\n" in artifact.content
    comment = next(line for line in artifact.content.splitlines() if line.startswith("#SBATCH --comment="))
    assert decode_comment(comment.split("=", 1)[1]) == {
        labels.PROJECT: "demo",
        labels.SERVICE: "reason",
        labels.SPEC_HASH: "abc123",
        labels.LINEAGE: "lin-1",
        "taoplan.node-port": "18082",
    }


def test_hostile_env_values_reach_the_job_byte_for_byte(tmp_path: Path) -> None:
    nasty = 'it\'s "quoted" $(touch pwned) `touch pwned`; echo \\\n# not a comment\nlast line '
    [artifact] = platform(container_runtime="none").render(deployment(env={"NASTY": nasty}), PLACED)
    # a value with newlines spans several lines: take the export statement whole
    start = artifact.content.index("export NASTY=")
    end = artifact.content.index("\nexport TAO_API_JOB_ID=")
    script = artifact.content[start:end] + '\nprintf %s "$NASTY"'
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout == nasty
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nvcr.io/nvidia/tao/tao-toolkit:7.1.0", "nvcr.io#nvidia/tao/tao-toolkit:7.1.0"),
        ("docker://nvcr.io/nvidia/tao/x:1", "nvcr.io#nvidia/tao/x:1"),
        ("localhost:5000/tao/x:1", "localhost:5000#tao/x:1"),
        ("nvcr.io#nvidia/x:1", "nvcr.io#nvidia/x:1"),
        ("/lustre/images/tao.sqsh", "/lustre/images/tao.sqsh"),
        ("nvidia/cuda:12.4", "nvidia/cuda:12.4"),
    ],
)
def test_pyxis_image_names(image: str, expected: str) -> None:
    assert pyxis_image(image) == expected


def test_partition_and_account_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_PARTITION", "polar")
    monkeypatch.delenv("SLURM_ACCOUNT", raising=False)
    ctx = PlatformContext(project="demo", lineage="lin-1", state_dir=Path("/nonexistent"), refs=REFS)
    [artifact] = Slurm(SlurmConfig(), ctx).render(deployment(), PLACED)
    assert "#SBATCH --partition=polar\n" in artifact.content
    assert "--account" not in artifact.content
    assert os.environ["SLURM_PARTITION"] == "polar"
