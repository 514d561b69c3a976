"""brev's artifacts: run.sh is the local-docker line (one template, one parser), start.sh wraps it so
that running it twice never starts a second container. Also the brev CLI output rules (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from taoplan.errors import PlatformError
from taoplan.platforms.base import Placement, PlatformContext
from taoplan.platforms.brev.cli import parse_ls, strip_names
from taoplan.platforms.brev.platform import Brev
from taoplan.platforms.common import containers
from taoplan.spec.platform_settings import BrevConfig, LocalDockerConfig
from tests.unit.test_render import JOB, REFS, deployment

SNAPSHOT = Path(__file__).parent / "snapshots" / "brev-start.sh"


def platform(**settings: object) -> Brev:
    ctx = PlatformContext(project="demo", lineage="lin-1", state_dir=Path("/nonexistent"), refs=REFS)
    return Brev(BrevConfig.model_validate({"instance": "box", **settings}), ctx)


def placement(vm_port: int = 8081) -> Placement:
    return Placement(
        host_port=9000, values={"vm_port": vm_port, "instance": "box", "instance_id": "x", "address": "a"}
    )


def test_start_script_matches_reviewed_snapshot() -> None:
    run, start = platform().render(deployment(), placement())
    assert (run.name, start.name) == ("run.sh", "start.sh")
    assert start.content == SNAPSHOT.read_text()


def test_run_sh_is_the_local_docker_line_on_the_vm_port() -> None:
    run, start = platform(shm_size="64m").render(deployment(), placement(8082))
    cfg = LocalDockerConfig.model_validate({"gpus": "nvidia", "shm_size": "64m", "publish": "loopback"})
    same = containers.run_script(deployment(), Placement(host_port=8082), cfg, REFS.service.container_port)
    assert run.content == same.content
    assert run.content.rstrip() in start.content
    args = containers.parse_run_script(run.content)
    assert args.name == JOB and args.ports == {"8080/tcp": ("127.0.0.1", 8082)}
    assert args.env_from_host == ["HF_TOKEN", "WANDB_API_KEY"]  # by NAME: values go on ssh's stdin
    public, _ = platform(access="public").render(deployment(), placement(8083))
    assert containers.parse_run_script(public.content).ports == {"8080/tcp": 8083}


def test_start_script_guards_the_container_name_before_anything_runs() -> None:
    _, start = platform().render(deployment(), placement())
    guard = start.content.index(f"if docker container inspect {JOB} >/dev/null 2>&1; then")
    assert guard < start.content.index("exec docker run")
    assert "exit 0\nfi\n" in start.content


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('{"workspaces": null}', []),
        ('{"workspaces": [{"name": "a", "id": "1", "status": "RUNNING", "shell_status": "READY"}]}', ["a"]),
        ('[{"name": "b", "id": "2", "status": "STOPPED", "shell_status": "NOT READY"}]', ["b"]),
        ("[]", []),
    ],
)
def test_ls_accepts_both_shapes_and_null(text: str, names: list[str]) -> None:
    assert [i.name for i in parse_ls(text)] == names


def test_ls_without_json_is_an_error() -> None:
    with pytest.raises(PlatformError, match="printed no JSON"):
        parse_ls("You are currently logged out, would you like to log in? [Y/n]: ")


def test_trailing_instance_names_are_removed() -> None:
    assert strip_names("hello\nbox\n", ("box",)) == "hello\n"
    assert strip_names("hellobox\n", ("box",)) == "hello\n"  # no newline after the output
    assert strip_names("box\n", ("box",)) == ""
    assert strip_names("a\nb\nbox-a\nbox-b\n", ("box-a", "box-b")) == "a\nb\n"


def test_a_failed_docker_run_is_reported_by_the_daemons_line_not_dockers_usage_hint() -> None:
    err = (
        "docker: Error response from daemon: network tao_default is ambiguous (2 matches found on name).\n"
        "See 'docker run --help'.\n"
        "Run 'docker run --help' for more information\n"
    )
    from taoplan.platforms.common.ssh import Reply

    daemon = err.splitlines()[0]
    assert Reply(125, "", err).message() == daemon
    assert Reply(125, "", err.replace("See 'docker run --help'.\n", "")).message() == daemon
