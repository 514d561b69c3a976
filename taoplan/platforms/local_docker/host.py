"""local-docker's GPU host for the doctor's preflight (platforms/common/preflight.py): the probes run
here when the Docker daemon is local; Docker's info and the GPU container go through the daemon."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taoplan.platforms.common.preflight import NotReachable
from taoplan.platforms.common.ssh import Reply

if TYPE_CHECKING:
    from taoplan.platforms.local_docker.platform import LocalDocker


class LocalHost:
    def __init__(self, platform: LocalDocker) -> None:
        self.platform = platform

    @property
    def where(self) -> str:
        return "this host" if self.platform.is_local else f"the Docker host {self.platform.public_host}"

    def run_script(self, script: str) -> Reply:
        if not self.platform.is_local:
            raise NotReachable("the Docker daemon is remote: run taoplan doctor on that host", docker=True)
        try:
            proc = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Reply(1, "", f"sh: {exc}")
        return Reply(proc.returncode, proc.stdout, proc.stderr)

    def docker_info(self) -> Mapping[str, Any]:
        return self.platform.client.info()

    def gpu_container(self, image: str) -> Reply:
        from docker.errors import APIError, ContainerError, ImageNotFound
        from docker.types import DeviceRequest

        client = self.platform.client
        try:
            client.images.get(image)
        except ImageNotFound:
            return Reply(125, "", f"No such image: {image}")
        except APIError as exc:
            return Reply(125, "", str(exc.explanation or exc))
        try:
            out = client.containers.run(
                image,
                ["-L"],
                entrypoint="nvidia-smi",
                device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])],
                remove=True,
                stdout=True,
                stderr=True,
            )
        except ContainerError as exc:
            err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else str(exc)
            return Reply(int(exc.exit_status or 1), "", err)
        except APIError as exc:
            return Reply(125, "", str(exc.explanation or exc))
        return Reply(0, out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out), "")
