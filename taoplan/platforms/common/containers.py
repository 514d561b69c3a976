"""The container model that local-docker and brev share: the rendered `docker run` line (run.sh), its
parse back into arguments, and observations read from a container's labels and Docker state.

Written once: local-docker hands the parsed arguments to the Docker API; brev runs the same line with
the docker CLI on a remote VM. Either way `taoplan render` shows exactly what runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from taoplan import labels
from taoplan.errors import PlatformError
from taoplan.platforms.base import Artifact, Deployment, Observation, Placement
from taoplan.platforms.common.templates import render_template

#: The template of the run line, and the name of the artifact it renders to.
RUN_TEMPLATE = ("local-docker", "run.sh.j2")
RUN_SCRIPT = "run.sh"


@dataclass
class RunArgs:
    """A parsed `docker run` command line: the single source of what apply asks Docker for."""

    name: str = ""
    image: str = ""
    command: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    ports: dict[str, int | tuple[str, int]] = field(default_factory=dict)  # (host ip, port) when bound
    init: bool = False
    tmpfs: dict[str, str] = field(default_factory=dict)
    gpus: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    env_from_host: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None  # [""]: the image's ENTRYPOINT is reset (`--entrypoint ''`)


def run_script(
    deployment: Deployment, placement: Placement, cfg: BaseModel, container_port: int, *, mode: int = 0o755
) -> Artifact:
    """run.sh: the `docker run` line of one deployment. ``cfg`` is a LocalDockerConfig (network, gpus,
    shm_size, publish...): brev builds one from its own settings."""
    context = {"d": deployment, "p": placement, "cfg": cfg, "container_port": container_port}
    return render_template(RUN_TEMPLATE[0], RUN_TEMPLATE[1], context, name=RUN_SCRIPT, mode=mode)


def parse_run_script(script: str) -> RunArgs:
    """Parse the `docker run` line of run.sh (the flags our template emits) into RunArgs."""
    # shlex keeps quoted text intact and yields "\n" for each backslash line continuation
    argv = [token for token in shlex.split(script, comments=True) if token != "\n"]
    if argv[:3] != ["exec", "docker", "run"]:
        raise PlatformError(f"run.sh must start with 'exec docker run', got {' '.join(argv[:3])!r}")
    args = RunArgs()
    items = iter(argv[3:])
    for token in items:
        if not token.startswith("--"):
            args.image = token
            args.command = list(items)
            break
        if token in ("--detach", "--init"):
            args.init = args.init or token == "--init"
            continue
        value = next(items)
        if token == "--name":
            args.name = value
        elif token == "--label":
            key, _, val = value.partition("=")
            args.labels[key] = val
        elif token == "--network":
            args.network = value
        elif token == "--publish":  # [IP:]HOST_PORT:CONTAINER_PORT
            host, _, container = value.rpartition(":")
            ip, _, port = host.rpartition(":")
            args.ports[f"{container}/tcp"] = (ip, int(port)) if ip else int(port)
        elif token == "--tmpfs":
            path, _, opts = value.partition(":")
            args.tmpfs[path] = opts
        elif token == "--entrypoint":
            args.entrypoint = [value]
        elif token == "--gpus":
            args.gpus = int(value)
        elif token == "--env":
            if "=" in value:
                key, _, val = value.partition("=")
                args.env[key] = val
            else:
                args.env_from_host.append(value)
        else:
            raise PlatformError(f"run.sh uses a flag apply does not understand: {token}")
    if not args.name or not args.image:
        raise PlatformError("run.sh names no container or no image")
    return args


# ------------------------------------------------------------------------------------------ observations

#: Docker's status word -> an Observation status.
STATUS = {
    "created": "pending",
    "restarting": "running",
    "running": "running",
    "paused": "running",
    "exited": "exited",
    "dead": "exited",
    "removing": "exited",
}


def from_summary(attrs: dict[str, Any]) -> Observation | None:
    """An observation from a container list entry (the API's summary shape)."""
    lbl = attrs.get("Labels") or {}
    if not lbl.get(labels.JOB_ID):
        return None
    match = re.match(r"Exited \((-?\d+)\)", attrs.get("Status") or "")
    port = next((int(p["PublicPort"]) for p in attrs.get("Ports") or [] if p.get("PublicPort")), None)
    return labelled(
        lbl,
        attrs.get("State", ""),
        exit_code=int(match.group(1)) if match else None,
        detail=attrs.get("Status") or "",
        host_port=port,
    )


def from_inspect(attrs: dict[str, Any], job_id: str | None = None) -> Observation:
    """An observation from `docker inspect` (the API's full shape)."""
    state = attrs.get("State", {})
    status = state.get("Status", "")
    bound = [
        b for binds in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).values() for b in binds or []
    ]
    port = next((int(b["HostPort"]) for b in bound if b.get("HostPort")), None)
    return labelled(
        attrs.get("Config", {}).get("Labels") or {},
        status,
        exit_code=state.get("ExitCode") if STATUS.get(status) == "exited" else None,
        detail=status,
        host_port=port,
        job_id=job_id,
    )


def labelled(
    lbl: dict[str, str],
    docker_status: str,
    *,
    exit_code: int | None,
    detail: str,
    host_port: int | None = None,
    job_id: str | None = None,
) -> Observation:
    """What our labels and Docker's status word say about one container."""
    return Observation(
        job_id=job_id or lbl.get(labels.JOB_ID, ""),
        service=lbl.get(labels.SERVICE, ""),
        status=STATUS.get(docker_status, "running"),
        spec_hash=lbl.get(labels.SPEC_HASH),
        lineage=lbl.get(labels.LINEAGE),
        exit_code=exit_code,
        detail=detail,
        host_port=host_port,
    )
