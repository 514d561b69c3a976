"""Platform `local-docker`: one container per service, started from the rendered `docker run` line.

Apply does not build a second, hand-written request: it parses the rendered run.sh back into its
arguments and hands exactly those to the Docker API. `taoplan render` shows what really runs.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlparse

from pydantic import BaseModel

from taoplan import labels
from taoplan.common import secrets
from taoplan.errors import PlatformError
from taoplan.platforms.base import (
    Artifact,
    Check,
    Deployment,
    Endpoint,
    Observation,
    Placement,
    PlatformContext,
    Started,
)
from taoplan.platforms.capacity import Capacity
from taoplan.platforms.common import containers, gpuhost, ports, preflight
from taoplan.platforms.common.containers import parse_run_script
from taoplan.platforms.local_docker import gpus as gpu_capacity
from taoplan.platforms.local_docker import socket as docker_socket
from taoplan.platforms.local_docker.host import LocalHost
from taoplan.spec.platform_settings import LocalDockerConfig
from taoplan.store.state import ServiceRecord

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec


class LocalDocker:
    name: ClassVar[str] = "local-docker"
    Config: ClassVar[type[BaseModel]] = LocalDockerConfig

    def __init__(self, config: LocalDockerConfig, ctx: PlatformContext) -> None:
        self.config = config
        self.ctx = ctx
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._setup_lock = threading.Lock()
        self._image_locks: dict[str, threading.Lock] = {}
        self._networks_seen: set[str] = set()  # known to be there in this run
        self._images_seen: set[str] = set()
        self._pulled: set[str] = set()  # images this run pulled (the image pull phase)

    # ----------------------------------------------------------------------------- connection

    @property
    def base_url(self) -> str | None:
        return self.config.docker_host or os.environ.get("DOCKER_HOST") or None

    @property
    def is_local(self) -> bool:
        url = self.base_url
        return url is None or url.startswith("unix://")

    @property
    def public_host(self) -> str:
        """The host name at which published ports are reached."""
        url = self.base_url
        if self.is_local or not url:
            return "127.0.0.1" if self.config.publish == "loopback" else "localhost"
        return urlparse(url).hostname or "localhost"

    @property
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import docker  # heavy: imported only when a docker service is touched

                try:
                    if self.base_url:
                        self._client = docker.DockerClient(
                            base_url=self.base_url,
                            use_ssh_client=self.base_url.startswith("ssh://"),
                            max_pool_size=32,
                        )
                    else:
                        self._client = docker.DockerClient(
                            base_url="unix:///var/run/docker.sock", max_pool_size=32
                        )
                    self._client.ping()
                except Exception as exc:  # noqa: BLE001 - every failure here means "unreachable"
                    self._client = None
                    where = self.base_url or "unix:///var/run/docker.sock"
                    raise PlatformError(
                        f"local-docker: cannot reach the Docker daemon at {where}: {_short(exc)}"
                    ) from None
            return self._client

    # ----------------------------------------------------------------------------- planning facts

    def replace_strategy(self, num_gpus: int, host_port: int | None) -> tuple[bool, str]:
        if host_port is not None:
            return False, f"fixed host_port {host_port}"
        if self.config.gpus == "nvidia":
            return True, ""  # the GPUs free, read at refresh, decide (engine.rollout)
        return True, "no GPUs are held (gpus: none)"

    # ----------------------------------------------------------------------------- apply

    def prepare(self, deployments: Sequence[Deployment], taken: set[int]) -> dict[str, Placement]:
        used = set(taken) | self._published_ports()
        used |= {d.host_port for d in deployments if d.host_port is not None}
        out: dict[str, Placement] = {}
        for d in deployments:
            if d.host_port is not None:
                out[d.job_id] = Placement(host_port=d.host_port)
                continue
            free = ports.claim if self.is_local else self._reserve_remote
            port = ports.first_free(used, free=free, what="local-docker host port")
            used.add(port)
            out[d.job_id] = Placement(host_port=port)
        return out

    def _reserve_remote(self, port: int) -> bool:
        return ports.reserve(port, scope=self.base_url or "local")

    def render(self, deployment: Deployment, placement: Placement) -> list[Artifact]:
        return [containers.run_script(deployment, placement, self.config, deployment.container_port)]

    def start(self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]) -> Started:
        from docker.errors import APIError, ImageNotFound
        from docker.types import DeviceRequest

        args = parse_run_script(next(a.content for a in artifacts if a.name == "run.sh"))
        client = self.client
        if args.network:
            self._ensure_network(args.network)
        pull_began = time.time()
        self._ensure_image(args.image)
        pulled = args.image in self._pulled  # pulled in this run: this start waited for that pull
        pull_ended = time.time()
        environment = dict(args.env)
        for name in args.env_from_host:
            environment[name] = secrets.require(name)
        try:
            container = client.containers.create(
                args.image,
                command=args.command,
                entrypoint=args.entrypoint,
                name=args.name,
                labels=args.labels,
                network=args.network,
                ports=args.ports,
                init=args.init,
                tmpfs=args.tmpfs,
                environment=environment,
                device_requests=[DeviceRequest(count=args.gpus, capabilities=[["gpu"]])]
                if args.gpus
                else None,
                detach=True,
            )
            container.start()
        except ImageNotFound as exc:
            raise PlatformError(
                f"{deployment.service}: image {args.image} not found: {_short(exc)}"
            ) from None
        except APIError as exc:
            raise PlatformError(
                f"{deployment.service}: docker refused to start {args.name}: {_short(exc)}"
            ) from None
        port = placement.host_port
        return Started(
            host_url=f"http://{self.public_host}:{port}",
            host_port=port,
            docker_url=f"http://{args.name}:{deployment.container_port}",
            phases=(("image pull", pull_began, pull_ended),) if pulled else (),
        )

    def _ensure_network(self, name: str) -> None:
        """Create the network if missing; asked once per run, not once per container."""
        from docker.errors import APIError

        with self._setup_lock:
            if name in self._networks_seen:
                return
            if not self.client.networks.list(names=[name]):
                try:
                    self.client.networks.create(
                        name, driver="bridge", labels={labels.PROJECT: self.ctx.project}
                    )
                except APIError as exc:
                    if "already exists" not in str(exc):
                        raise PlatformError(
                            f"local-docker: cannot create network {name}: {_short(exc)}"
                        ) from None
            self._networks_seen.add(name)

    def _ensure_image(self, image: str) -> None:
        """Make ``image`` present per the pull policy; once per image and run, whatever the number
        of containers starting from it at once."""
        with self._setup_lock:
            lock = self._image_locks.setdefault(image, threading.Lock())
        with lock:
            if image not in self._images_seen:
                self._fetch_image(image)
                self._images_seen.add(image)

    def _fetch_image(self, image: str) -> None:
        from docker.errors import DockerException, ImageNotFound

        policy = self.config.pull
        if policy != "always":
            try:
                self.client.images.get(image)
                return
            except ImageNotFound:
                if policy == "never":
                    raise PlatformError(f"image {image} is not present and pull is 'never'") from None
        self._pulled.add(image)
        try:
            self.client.images.pull(image)
        except DockerException as exc:
            raise PlatformError(
                f"image {image} is not present locally and could not be pulled: {_short(exc)}"
            ) from None

    def stop(self, record: ServiceRecord) -> None:
        self.remove(record.job_id)

    def remove(self, job_id: str) -> None:
        from docker.errors import APIError, NotFound

        try:
            self.client.containers.get(job_id).remove(force=True)
        except NotFound:
            return
        except APIError as exc:
            if exc.status_code == 409 and "already in progress" in str(exc):
                return
            raise PlatformError(f"local-docker: cannot remove {job_id}: {_short(exc)}") from None

    # ----------------------------------------------------------------------------- observe

    def observe(self) -> dict[str, Observation]:
        out = {}
        for attrs in self._list_containers(all=True, label_filters=[f"{labels.PROJECT}={self.ctx.project}"]):
            obs = containers.from_summary(attrs)
            if obs is not None:
                out[obs.job_id] = obs
        return out

    def probe(self, job_id: str) -> Observation:
        from docker.errors import NotFound

        try:
            attrs = self.client.api.inspect_container(job_id)
        except NotFound:
            return Observation(job_id=job_id, service="", status="missing")
        state = attrs.get("State", {})
        status = state.get("Status", "")
        return containers.labelled(
            attrs.get("Config", {}).get("Labels") or {},
            status,
            exit_code=state.get("ExitCode") if containers.STATUS.get(status) == "exited" else None,
            detail=status,
            job_id=job_id,
        )

    def capacity(self, wanted: tuple[int, ...]) -> Capacity:
        """The host's GPUs less those running containers hold (any project's, anyone's)."""
        if self.config.gpus == "none" or self.is_local:
            found, why = gpuhost.host_gpus() if self.config.gpus != "none" else (None, "")
            return gpu_capacity.capacity(found, why, self._running_inspected, self.config.gpus)
        return Capacity.not_known(
            f"the Docker host {self.public_host} is remote: its GPUs are not counted from here"
        )

    def _running_inspected(self) -> list[dict[str, Any]]:
        summaries = self._list_containers(all=False, label_filters=[])
        path = docker_socket.socket_path(self.base_url)
        if path is not None:
            return gpu_capacity.inspect_all(lambda target: docker_socket.get(path, target), summaries)
        return [self.client.api.inspect_container(s["Id"]) for s in summaries]

    def _list_containers(self, *, all: bool, label_filters: list[str]) -> list[dict[str, Any]]:
        """Container summaries; over the local socket directly when there is one (no SDK import)."""
        path = docker_socket.socket_path(self.base_url)
        where = self.base_url or f"unix://{docker_socket.DEFAULT_SOCKET}"
        try:
            if path is not None:
                return docker_socket.list_containers(path, all=all, labels=label_filters)
            listed = self.client.containers.list(all=all, sparse=True, filters={"label": label_filters})
            return [c.attrs for c in listed]
        except OSError as exc:
            raise PlatformError(
                f"local-docker: cannot reach the Docker daemon at {where}: {_short(exc)}"
            ) from None
        except PlatformError:
            raise
        except Exception as exc:  # noqa: BLE001 - an answer that is not a container list, from either path
            raise PlatformError(
                f"local-docker: the Docker daemon at {where} did not list containers: {_short(exc)}"
            ) from None

    def _published_ports(self) -> set[int]:
        ports: set[int] = set()
        for attrs in self._list_containers(all=False, label_filters=[]):
            for p in attrs.get("Ports") or []:
                if p.get("PublicPort"):
                    ports.add(int(p["PublicPort"]))
        return ports

    def warm(self, writing: bool = False) -> None:
        if writing or docker_socket.socket_path(self.base_url) is None:
            import docker  # noqa: F401 - imports are not safe to race from threads

    def dry_run(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> list[str]:
        """run.sh must parse into a request this platform understands; Docker has no server-side dry run."""
        try:
            parse_run_script(next(a.content for a in artifacts if a.name == "run.sh"))
        except PlatformError as exc:
            return [f"{deployment.service}: {exc.message}"]
        return []

    def describe(self, spec: ServiceSpec) -> tuple[str, ...]:
        if self.config.publish == "all":
            return (
                "local-docker: publish: all: the port is open on every interface, so anyone who reaches "
                "this host can call the service without a key (publish: loopback keeps it to 127.0.0.1, "
                "behind taoplan gateway)",
            )
        if not self.is_local:
            return (
                f"local-docker: publish: loopback on the Docker host {self.public_host}: the port answers "
                "only on that host's 127.0.0.1 (set publish: all to reach it from here)",
            )
        return ()

    def endpoint(self, record: ServiceRecord, reopen: bool = True) -> Endpoint:
        if not record.host_url:
            raise PlatformError(f"{record.name}: no endpoint recorded")
        return Endpoint(record.host_url)

    def logs(self, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]:
        from docker.errors import NotFound

        try:
            container = self.client.containers.get(record.job_id)
        except NotFound:
            raise PlatformError(f"{record.name}: container {record.job_id} does not exist") from None
        if not follow:
            text = container.logs(tail=tail).decode("utf-8", "replace")
            yield from text.splitlines()
            return
        buffer = ""
        for chunk in container.logs(tail=tail, stream=True, follow=True):
            buffer += chunk.decode("utf-8", "replace")
            *lines, buffer = buffer.split("\n")
            yield from lines
        if buffer:
            yield buffer

    def doctor(self, deployments: Sequence[Deployment]) -> list[Check]:
        where = self.base_url or "unix:///var/run/docker.sock"
        try:
            info = self.client.info()
        except PlatformError as exc:
            return [Check("docker daemon", False, exc.message)]
        checks = [Check("docker daemon", True, f"{where}: Docker {info.get('ServerVersion')}")]
        if self.config.gpus == "none":
            return [*checks, Check("GPU runtime", True, preflight.SKIPPED)]
        return checks + preflight.preflight(LocalHost(self), deployments, self.ctx.refs.service.gpu_host)


def _short(exc: BaseException) -> str:
    """The part of a docker SDK error a user can act on (the OS error, else its first line)."""
    text = str(getattr(exc, "explanation", None) or exc).strip()
    os_error = re.search(r"\[Errno -?\d+\] ([^'\")]+)|(No such file or directory|Connection refused)", text)
    if os_error:
        return (os_error.group(1) or os_error.group(2)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


PLATFORM = LocalDocker
