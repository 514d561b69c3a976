"""run.sh is what apply executes: rendered from the template, parsed back into the Docker request."""

from __future__ import annotations

from pathlib import Path

from taoplan import labels
from taoplan.platforms.base import Deployment, Placement, PlatformContext
from taoplan.platforms.local_docker.platform import LocalDocker, LocalDockerConfig, parse_run_script
from taoplan.spec import payload
from taoplan.spec.config import ServiceSpec
from taoplan.spec.references import load_references

REFS = load_references()
JOB = "11111111-2222-4333-8444-555555555555"
SNAPSHOT = Path(__file__).parent / "snapshots" / "local-docker-run.sh"


def deployment(gpus: int = 2) -> Deployment:
    spec = ServiceSpec.model_validate(
        {
            "network_arch": "cosmos-rl",
            "model_path": "/models/it's here",
            "num_gpus": gpus,
            "env": {"TAO_LOG_LEVEL": "INFO"},
            "secrets": ["HF_TOKEN", "WANDB_API_KEY"],
        },
        context={"refs": REFS},
    )
    return Deployment(
        service="reason",
        job_id=JOB,
        network_arch="cosmos-rl",
        image="nvcr.io/nvidia/tao/x:1",
        spec_hash="abc123",
        num_gpus=gpus,
        inner_command=payload.inner_command(spec, JOB, "local-docker", REFS),
        env={"TAO_LOG_LEVEL": "INFO", **payload.env_payload("local-docker", JOB, REFS)},
        secret_names=("HF_TOKEN", "WANDB_API_KEY"),
        labels=labels.for_deployment("demo", "lin-1", "reason", JOB, "abc123"),
        host_port=None,
        spec=spec,
    )


def platform(gpus: str = "nvidia", publish: str = "loopback") -> LocalDocker:
    ctx = PlatformContext(project="demo", lineage="lin-1", state_dir=Path("/nonexistent"), refs=REFS)
    return LocalDocker(LocalDockerConfig(gpus=gpus, publish=publish), ctx)  # type: ignore[arg-type]


def test_run_script_matches_reviewed_snapshot() -> None:
    [artifact] = platform().render(deployment(), Placement(host_port=8081))
    assert artifact.name == "run.sh"
    assert artifact.content == SNAPSHOT.read_text()


def test_run_script_parses_back_to_exactly_what_apply_sends() -> None:
    [artifact] = platform().render(deployment(), Placement(host_port=8081))
    args = parse_run_script(artifact.content)
    assert args.name == JOB
    assert args.image == "nvcr.io/nvidia/tao/x:1"
    assert args.command == ["/bin/bash", "-c", deployment().inner_command]
    assert args.ports == {"8080/tcp": ("127.0.0.1", 8081)}  # publish: loopback, the default
    assert args.init and args.tmpfs == {"/dev/shm": "rw,size=8g"} and args.gpus == 2
    assert args.labels[labels.SPEC_HASH] == "abc123"
    assert args.env["TAO_EXECUTION_BACKEND"] == "local-docker"
    assert args.env_from_host == ["HF_TOKEN", "WANDB_API_KEY"]


def test_gpus_none_passes_no_devices() -> None:
    [artifact] = platform("none").render(deployment(), Placement(host_port=8081))
    assert "--gpus" not in artifact.content
    assert parse_run_script(artifact.content).gpus is None


def test_secrets_render_by_name_only(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_TOKEN", "canary-value-123")
    [artifact] = platform().render(deployment(), Placement(host_port=8081))
    assert "canary-value-123" not in artifact.content
    assert "--env HF_TOKEN \\" in artifact.content


def test_hostile_env_values_survive_render_and_parse_byte_for_byte() -> None:
    nasty = 'it\'s "quoted" $(id) `id`; echo \\\n# not a comment\nlast line '
    d = deployment()
    d = Deployment(**{**d.__dict__, "env": {**d.env, "NASTY": nasty}})
    [artifact] = platform().render(d, Placement(host_port=8081))
    assert parse_run_script(artifact.content).env["NASTY"] == nasty


def test_publish_all_opens_every_interface_and_plan_says_so() -> None:
    loopback = platform().render(deployment(), Placement(host_port=8081))[0].content
    [artifact] = platform(publish="all").render(deployment(), Placement(host_port=8081))
    assert "--publish 8081:8080" in artifact.content
    assert artifact.content == loopback.replace("--publish 127.0.0.1:8081:8080", "--publish 8081:8080")
    assert parse_run_script(artifact.content).ports == {"8080/tcp": 8081}
    [note] = platform(publish="all").describe(deployment().spec)
    assert "every interface" in note and "without a key" in note
    assert platform().describe(deployment().spec) == ()
    assert platform().public_host == "127.0.0.1" and platform(publish="all").public_host == "localhost"


def test_publish_is_part_of_the_spec_hash() -> None:
    """Changing publish replaces the services (platform settings are in the spec hash)."""
    from taoplan.common import hashing

    texts = [
        hashing.canonical(LocalDockerConfig(publish=p).model_dump(mode="json")) for p in ("loopback", "all")
    ]
    spec = {"network_arch": "cosmos-rl"}
    assert hashing.spec_hash(spec, "img", texts[0]) != hashing.spec_hash(spec, "img", texts[1])
