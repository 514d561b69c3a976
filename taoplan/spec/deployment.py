"""Deployments: everything needed to run one instance of a service, built from its desired spec.

A deployment is what crosses into a platform: the image, the inner command (identical on every
platform), the non-secret env with the TAO payload, the secret names and the labels. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from taoplan import labels
from taoplan.spec import payload

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec
    from taoplan.spec.desired import Desired
    from taoplan.spec.references import ReadinessRefs, References


class HasProject(Protocol):
    """What building a deployment needs to know of the workspace."""

    @property
    def project(self) -> str: ...

    @property
    def refs(self) -> References: ...


@dataclass(frozen=True)
class Deployment:
    """Everything needed to run one instance of a service, before platform allocations."""

    service: str
    job_id: str
    network_arch: str  # the TAO arch, or the server type
    image: str
    spec_hash: str
    num_gpus: int
    inner_command: str
    env: Mapping[str, str]  # non-secret, including the TAO payload env
    secret_names: Sequence[str]
    labels: Mapping[str, str]
    host_port: int | None  # a fixed port from the services file, else None
    spec: ServiceSpec  # platforms that move the listening port rebuild the command from it
    container_port: int = 8080  # where the server listens inside the container
    readiness: ReadinessRefs | None = None  # the contract: path and what its replies mean
    takes_port: bool = True  # a platform may move the port (it is a flag of the command)
    registry: bool = True  # the TAO skill registry gets an entry (TAO services only)
    reset_entrypoint: bool = False  # run the inner command instead of the image's ENTRYPOINT
    num_nodes: int = 1
    served_name: str | None = None  # the model name a server answers to; None for TAO

    @property
    def readiness_path(self) -> str:
        assert self.readiness is not None
        return self.readiness.path


def build_deployment(ws: HasProject, want: Desired, job_id: str, lineage: str) -> Deployment:
    spec = want.spec
    refs = ws.refs
    env = payload.service_env(spec, want.platform, job_id, refs)
    return Deployment(
        service=want.name,
        job_id=job_id,
        network_arch=spec.kind,
        image=want.image,
        spec_hash=want.spec_hash,
        num_gpus=spec.num_gpus,
        inner_command=payload.inner_command(spec, job_id, want.platform, ws.refs),
        env=env,
        secret_names=tuple(spec.secrets),
        labels=labels.for_deployment(ws.project, lineage, want.name, job_id, want.spec_hash),
        host_port=spec.host_port,
        spec=spec,
        container_port=payload.container_port(spec, refs),
        readiness=payload.readiness(spec, refs),
        takes_port=payload.takes_port(spec, refs),
        registry=spec.is_tao,
        reset_entrypoint=payload.reset_entrypoint(spec, refs),
        num_nodes=spec.num_nodes,
        served_name=payload.served_name(spec),
    )
