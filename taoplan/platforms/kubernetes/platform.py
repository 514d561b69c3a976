"""Platform `kubernetes`: one Deployment, Service and (if needed) Secret per service, by server-side apply.

The objects are rendered from templates/kubernetes/*.yaml.j2 (`taoplan render` shows them) and apply
parses exactly those files and sends them with server-side apply, field manager ``taoplan``. The one
thing added at apply time is each secret value, read from the environment into the Secret object in
memory. Every object is named after its job (``tao-<service>-<job8>``) and labelled with
``taoplan.io/{project,service,job-id,lineage}``, so observe() lists this project's workloads by label
and destroy deletes exactly what it owns. taoplan reaches a pod through ``access``: a port-forward it
runs in the background (the forwarder of forward.py, whose PID state records, like the Slurm tunnel),
or the Service's own address.

This class is the Platform interface of platforms/base.py and nothing more: it keeps what one
refresh learned (GPU capacity) and hands each call to the module that does that job: names,
pods, capacity, api, objects, observe, access, forward, doctor. The ``kubernetes`` client is imported
inside functions only: `taoplan --help` must stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from taoplan.errors import PlatformError
from taoplan.platforms import capacity as shared
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
from taoplan.platforms.common import ports
from taoplan.spec.platform_settings import KubernetesConfig

from . import access, doctor, objects, observe
from .api import Session
from .capacity import Capacity, current_capacity

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec
    from taoplan.store.state import ServiceRecord


class Kubernetes:
    name: ClassVar[str] = "kubernetes"
    Config: ClassVar[type[BaseModel]] = KubernetesConfig

    def __init__(self, config: KubernetesConfig, ctx: PlatformContext) -> None:
        self.session = Session(config, ctx)
        self._capacity: Capacity | None = None  # from the last observe(); read by describe()
        self._capacity_error = "no refresh yet"  # why _capacity is None

    @property
    def config(self) -> KubernetesConfig:
        return self.session.config

    @config.setter
    def config(self, value: KubernetesConfig) -> None:
        self.session.config = value

    @property
    def ctx(self) -> PlatformContext:
        return self.session.ctx

    def warm(self, writing: bool = False) -> None:
        import kubernetes.client  # noqa: F401 - imports are not safe to race from threads

    # ----------------------------------------------------------------------------- planning facts

    def replace_strategy(self, num_gpus: int, host_port: int | None) -> tuple[bool, str]:
        if host_port is not None and self.config.access == "port-forward":
            return False, f"fixed host_port {host_port} (the local port of the port-forward)"
        if host_port is not None and self.config.service_type == "NodePort":
            return False, f"fixed host_port {host_port} (the Service's nodePort)"
        return True, ""  # the GPUs free, read at refresh, decide the rest (engine.rollout)

    def describe(self, spec: ServiceSpec) -> tuple[str, ...]:
        cfg = self.config
        how = (
            "a port-forward run by taoplan"
            if cfg.access == "port-forward"
            else f"the {cfg.service_type} Service"
        )
        lines = [
            f"kubernetes: Deployment + {cfg.service_type} Service in namespace {cfg.namespace}, reached through {how}"
        ]
        if self._capacity is None:
            lines.append(f"kubernetes: {spec.num_gpus} {cfg.gpu_resource}: fit not checked (no refresh)")
        else:
            lines.append(f"kubernetes: {self._capacity.describe(spec.num_gpus)}")
        return tuple(lines)

    # ----------------------------------------------------------------------------- render

    def prepare(self, deployments: Sequence[Deployment], taken: set[int]) -> dict[str, Placement]:
        used = set(taken) | {d.host_port for d in deployments if d.host_port is not None}
        out: dict[str, Placement] = {}
        for d in deployments:
            port = d.host_port
            if port is None and self.config.access == "port-forward":
                port = ports.first_free(used, what="local port for a port-forward")
                used.add(port)
            out[d.job_id] = Placement(host_port=port)
        return out

    def render(self, deployment: Deployment, placement: Placement) -> list[Artifact]:
        return objects.render(self.session, deployment, placement)

    def objects(self, artifacts: Sequence[Artifact], *, fill_secrets: bool) -> list[dict[str, Any]]:
        """The rendered files as API objects (see objects.parse)."""
        return objects.parse(artifacts, fill_secrets=fill_secrets)

    # ----------------------------------------------------------------------------- apply

    def start(self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]) -> Started:
        objs = objects.parse(artifacts, fill_secrets=True)
        applied = objects.apply_all(
            self.session, deployment, objs, undo=lambda: self.remove(deployment.job_id)
        )
        return access.started(self.session, deployment, placement, applied)

    def dry_run(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> list[str]:
        return doctor.dry_run(self.session, deployment, placement, artifacts)

    def stop(self, record: ServiceRecord) -> None:
        self.remove(record.job_id)
        access.close_record_forwarder(self.session, record)

    def remove(self, job_id: str) -> None:
        objects.remove(self.session, job_id)

    # ----------------------------------------------------------------------------- observe

    def observe(self) -> dict[str, Observation]:
        listing = observe.Listing(self.session)
        try:
            self._capacity = current_capacity(self.session)
        except PlatformError as exc:  # no right to list nodes: plan says "not checked"
            self._capacity, self._capacity_error = None, exc.message
        return listing.observations()

    def capacity(self, wanted: tuple[int, ...]) -> shared.Capacity:
        """What observe() read of the nodes and pods (one reading for fit, describe and strategy)."""
        if self._capacity is None:
            return shared.Capacity.not_known(f"cannot read node capacity: {self._capacity_error}")
        return self._capacity.shared(self.config)

    def probe(self, job_id: str) -> Observation:
        return observe.probe(self.session, job_id)

    def endpoint(self, record: ServiceRecord, reopen: bool = True) -> Endpoint:
        return access.endpoint(self.session, record, reopen)

    def logs(self, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]:
        return observe.logs(self.session, record, tail, follow)

    def doctor(self, deployments: Sequence[Deployment]) -> list[Check]:
        return doctor.doctor(self.session, deployments)


PLATFORM = Kubernetes
