"""Slurm's GPU host for the doctor's preflight (platforms/common/preflight.py): a compute node of the
partition, reached from the login node with one short ``srun`` that never waits in the queue
(``--immediate``) and holds one GPU for the seconds the probes take. With container_runtime docker,
Docker's info and the GPU smoke container run in that same step; GPU memory is not judged (Slurm
hands out whole GPUs, and plan's fit verdict says whether they are free)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from taoplan.errors import PlatformError
from taoplan.platforms.base import Check, Deployment
from taoplan.platforms.common import preflight
from taoplan.platforms.common.ssh import Reply, command
from taoplan.platforms.slurm.remote import Cluster
from taoplan.spec.references import GpuHostRefs

#: Seconds srun may wait for a free GPU before it gives up (then the preflight is a note).
IMMEDIATE = 20


class SlurmNode:
    def __init__(self, cluster: Cluster, images: Sequence[str], docker: bool) -> None:
        self.cluster = cluster
        self.images = list(dict.fromkeys(images))
        self.docker = docker
        self._probes: dict[str, tuple[int, str]] = {}

    @property
    def where(self) -> str:
        name = self._probes.get("node", (1, ""))[1].strip()
        partition = self.cluster.settings.partition
        return f"node {name}" if name else f"a node of partition {partition or '(default)'}"

    def run_script(self, script: str) -> Reply:
        extra = {"node": "hostname"}
        if self.docker:
            extra["docker-info"] = "docker info --format '{{json .}}'"
            for index, image in enumerate(self.images):
                extra[f"container-{index}"] = preflight.smoke_command(image)
        settings = self.cluster.settings
        argv = ["srun", f"--immediate={IMMEDIATE}", "--nodes=1", "--ntasks=1", "--gres=gpu:1", "--time=5"]
        argv += ["--job-name=taoplan-doctor"]
        argv += [f"--partition={settings.partition}"] if settings.partition else []
        argv += [f"--account={settings.account}"] if settings.account else []
        remote = command(*argv, "sh", "-s")
        reply = self.cluster.conn.run(remote, stdin=script + preflight.probe_script(extra), timeout=600)
        self._probes = preflight.split_probes(reply.out)
        if "node" not in self._probes:
            raise preflight.NotReachable(f"srun could not run them now ({reply.message()})")
        return reply

    def docker_info(self) -> Mapping[str, Any]:
        code, text = self._probes.get("docker-info", (1, "not run"))
        try:
            data = json.loads(text) if code == 0 else None
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            first = next((line for line in text.splitlines() if line.strip()), f"exit code {code}")
            raise PlatformError(f"docker info on {self.where}: {first.strip()}")
        return data

    def gpu_container(self, image: str) -> Reply:
        code, text = self._probes.get(f"container-{self.images.index(image)}", (1, "not run"))
        return Reply(code, text, "")


def checks(cluster: Cluster, deployments: Sequence[Deployment], refs: GpuHostRefs) -> list[Check]:
    docker = cluster.settings.config.container_runtime == "docker"
    node = SlurmNode(cluster, [d.image for d in deployments], docker)
    otherwise = "choose a partition whose nodes have NVIDIA GPUs (platforms.slurm.partition)"
    return preflight.preflight(node, deployments, refs, memory=False, docker=docker, otherwise=otherwise)
