"""Platform `brev`: one container per service on an NVIDIA Brev GPU VM.

The container is the local-docker one (platforms/common/containers.py: the same run.sh line, labels,
names and observations); it runs with the docker CLI on the VM over ssh through brev's ssh config
(vm.py), wrapped in a start.sh that is safe to run twice. The brev CLI only finds, creates, starts and
deletes the instance (cli.py, instance.py). A service is reached through `ssh -N -L` to the VM's
127.0.0.1 (access: tunnel, its PID recorded) or at the VM's address (access: public).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from taoplan.common import secrets as secret_values
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
from taoplan.platforms.brev import doctor
from taoplan.platforms.brev.cli import BrevCLI
from taoplan.platforms.brev.instance import GONE, Lifecycle, instance_name
from taoplan.platforms.brev.vm import VM, has_alias
from taoplan.platforms.common import containers, ports, tunnel
from taoplan.platforms.common.templates import render_template
from taoplan.spec.platform_settings import BrevConfig, LocalDockerConfig
from taoplan.store.state import ServiceRecord

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec

NETWORK = "tao_default"
START_SCRIPT = "start.sh"
LOOPBACK = "127.0.0.1"


class Brev:
    name: ClassVar[str] = "brev"
    Config: ClassVar[type[BaseModel]] = BrevConfig

    def __init__(self, config: BrevConfig, ctx: PlatformContext) -> None:
        self.config = config
        self.ctx = ctx
        self.cli = BrevCLI(os.environ.get("TAOPLAN_BREV_BINARY") or "brev")
        self.instance = instance_name(config, ctx.project)
        self.lifecycle = Lifecycle(self.cli, config, self.instance)
        self._vms: dict[str, VM] = {}
        self._lock = threading.Lock()
        self._delete_lock = threading.Lock()
        self._pending: set[str] = set()  # job_ids prepared in this run and not yet stopped
        self._ngc_done: set[str] = set()
        self._deleted = False

    def vm(self, instance: str | None = None) -> VM:
        name = instance or self.instance
        with self._lock:
            if name not in self._vms:
                if not has_alias(name):
                    self.cli.refresh()  # brev writes Host <name> into ~/.brev/ssh_config
                self._vms[name] = VM(name, self.ctx.state_dir)
            return self._vms[name]

    @property
    def _container_port(self) -> int:
        return self.ctx.refs.service.container_port

    # ----------------------------------------------------------------------------- planning facts

    def replace_strategy(self, num_gpus: int, host_port: int | None) -> tuple[bool, str]:
        if host_port is not None:
            return False, f"fixed host_port {host_port}"
        if self.config.gpus == "nvidia":
            return True, ""  # the GPUs free, read at refresh, decide (engine.rollout)
        return True, "no GPUs are held (gpus: none)"

    def describe(self, spec: ServiceSpec) -> tuple[str, ...]:
        where = (
            self.config.instance
            or f"{self.instance} (created: {self.config.create.type if self.config.create else ''})"
        )
        reach = (
            "an ssh tunnel to the VM's 127.0.0.1" if self.config.access == "tunnel" else "the VM's address"
        )
        return (f"brev: docker on instance {where}, reached through {reach}",)

    def warm(self, writing: bool = False) -> None:
        """Nothing to import: brev and ssh are binaries."""

    def dry_run(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> list[str]:
        try:
            containers.parse_run_script(next(a.content for a in artifacts if a.name == containers.RUN_SCRIPT))
        except PlatformError as exc:
            return [f"{deployment.service}: {exc.message}"]
        return []

    # ----------------------------------------------------------------------------- apply

    def prepare(self, deployments: Sequence[Deployment], taken: set[int]) -> dict[str, Placement]:
        """The instance up (created or started as the settings allow), then ports: the VM's lowest free
        from 8080, and for a tunnel a free local port."""
        inst = self.lifecycle.ensure()
        vm = self.vm()
        if self.lifecycle.started:  # the plan counted its containers gone (the instance was stopped)
            for attrs in vm.inspect_project(self.ctx.project):
                vm.remove(attrs.get("Name", "").lstrip("/") or attrs["Id"])
        vm_used = vm.ports_in_use()
        address = vm.address() if self.config.access == "public" else LOOPBACK
        local_taken = set(taken) | {d.host_port for d in deployments if d.host_port is not None}
        out: dict[str, Placement] = {}
        for d in deployments:
            fixed = d.host_port
            if self.config.access == "public" and fixed is not None:
                vm_port = fixed
            else:
                vm_port = ports.first_free(vm_used, free=lambda p: True, what=f"port on {self.instance}")
            vm_used.add(vm_port)
            host_port = vm_port
            if self.config.access == "tunnel":
                host_port = fixed or ports.first_free(local_taken, what="local port for a tunnel")
                local_taken.add(host_port)
            values = {"vm_port": vm_port, "instance": inst.name, "instance_id": inst.id, "address": address}
            out[d.job_id] = Placement(host_port=host_port, values=values)
            self._pending.add(d.job_id)
        return out

    def _run_config(self) -> LocalDockerConfig:
        """The local-docker settings run.sh is rendered with: brev's gpus and shm_size; published on
        the VM's loopback for a tunnel, on every interface for public access."""
        fields: dict[str, object] = {
            "network": NETWORK,
            "gpus": self.config.gpus,
            "shm_size": self.config.shm_size,
        }
        if "publish" in LocalDockerConfig.model_fields:
            fields["publish"] = "loopback" if self.config.access == "tunnel" else "all"
        return LocalDockerConfig.model_validate(fields)

    def render(self, deployment: Deployment, placement: Placement) -> list[Artifact]:
        vm_port = int(placement.values.get("vm_port", placement.host_port or 0))
        run = containers.run_script(
            deployment, Placement(host_port=vm_port), self._run_config(), self._container_port
        )
        context = {
            "d": deployment,
            "instance": placement.values.get("instance", self.instance),
            "network": NETWORK,
            "project": self.ctx.project,
            "run_sh": run.content,
        }
        return [run, render_template(self.name, "start.sh.j2", context, mode=0o755)]

    def start(self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]) -> Started:
        script = next(a.content for a in artifacts if a.name == START_SCRIPT)
        secrets = {name: secret_values.require(name) for name in deployment.secret_names}
        vm = self.vm(str(placement.values.get("instance") or self.instance))
        with self._lock:
            login = deployment.image not in self._ngc_done
            self._ngc_done.add(deployment.image)
        if login:
            vm.ngc_login(deployment.image)
        vm.start(script, secrets, deployment.job_id)
        vm_port = int(placement.values["vm_port"])
        host_url = None
        if self.config.access == "public":
            host_url = f"http://{placement.values['address']}:{vm_port}"
        return Started(
            host_url=host_url,
            host_port=placement.host_port,
            docker_url=f"http://{deployment.job_id}:{self._container_port}",
            extra={
                "brev_instance": vm.instance,
                "instance_id": placement.values.get("instance_id"),
                "brev_port": vm_port,
            },
        )

    def stop(self, record: ServiceRecord) -> None:
        instance = str(record.extra.get("brev_instance") or self.instance)
        self._pending.discard(record.job_id)
        self._close_tunnel(record)
        found = self._usable(instance)
        if found:
            self.vm(instance).remove(record.job_id)
        self._delete_if_done(instance, found)

    def remove(self, job_id: str) -> None:
        if self._usable(self.instance):
            self.vm().remove(job_id)

    def _usable(self, instance: str) -> bool:
        """True when the instance runs (its containers can be reached); a stopped or deleted one holds none."""
        found, _ = self.cli.find(instance)
        return found is not None and found.status not in (*GONE, "DELETING") and found.ready

    def _delete_if_done(self, instance: str, running: bool) -> None:
        """An ephemeral instance is deleted with the last container on it, unless this run still starts one."""
        create = self.config.create
        if create is None or not create.ephemeral or instance != self.instance:
            return
        with self._delete_lock:
            if self._deleted or self._pending:
                return
            if running and self.vm(instance).job_containers():
                return
            found, _ = self.cli.find(instance)
            if found is None or found.status == "DELETING":
                return
            self.cli.delete(instance)
            self._deleted = True

    def _close_tunnel(self, record: ServiceRecord) -> None:
        port = record.extra.get("brev_port")
        if self.config.access == "tunnel" and record.host_port and port:
            tunnel.close_tunnel(
                record.extra.get("tunnel_pid"), tunnel.forward(record.host_port, LOOPBACK, port)
            )

    # ----------------------------------------------------------------------------- observe

    def observe(self) -> dict[str, Observation]:
        """This project's containers on the instance. A stopped or missing instance holds none (every
        service on it is gone); DELETING or FAILURE is an error."""
        found = self.lifecycle.lookup()
        if found is None or not found.ready:
            return {}
        out = {}
        for attrs in self.vm().inspect_project(self.ctx.project):
            obs = containers.from_inspect(attrs)
            if obs.job_id:
                out[obs.job_id] = obs
        return out

    def probe(self, job_id: str) -> Observation:
        return self.vm().probe(job_id)

    # ----------------------------------------------------------------------------- endpoint

    def endpoint(self, record: ServiceRecord, reopen: bool = True) -> Endpoint:
        if self.config.access == "public":
            if not record.host_url:
                raise PlatformError(f"{record.name}: no endpoint recorded")
            return Endpoint(record.host_url)
        instance = str(record.extra.get("brev_instance") or self.instance)
        vm_port, local = record.extra.get("brev_port"), record.host_port
        if not isinstance(vm_port, int):
            return Endpoint(None, "no VM port recorded")
        pid = record.extra.get("tunnel_pid")
        if local and tunnel.is_ours(pid, tunnel.forward(local, LOOPBACK, vm_port)):
            return Endpoint(f"http://localhost:{local}")
        why = "the container runs" if pid is None else "tunnel down"
        if not reopen:
            return Endpoint(None, why)
        self._close_tunnel(record)
        vm = self.vm(instance)
        vm.conn.ensure_master()  # a clear ssh error before the tunnel's own
        log = self.ctx.state_dir / "tunnels" / f"{record.job_id}.log"
        local, pid = tunnel.open_on_free_port(
            vm.conn.argv(multiplex=False), vm.conn.target.login, local, LOOPBACK, vm_port, log
        )
        url = f"http://localhost:{local}"
        return Endpoint(
            url,
            detail=f"tunnel localhost:{local} -> {instance}:{vm_port} opened ({why})",
            updates={"host_url": url, "host_port": local, "extra": {"tunnel_pid": pid}},
        )

    # ----------------------------------------------------------------------------- logs, doctor

    def logs(self, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]:
        instance = str(record.extra.get("brev_instance") or self.instance)
        return self.vm(instance).logs(record.job_id, tail, follow)

    def doctor(self, deployments: Sequence[Deployment]) -> list[Check]:
        return doctor.checks(self, deployments)


PLATFORM = Brev
