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
    from taoplan.spec.references import References


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
    network_arch: str
    image: str
    spec_hash: str
    num_gpus: int
    inner_command: str
    env: Mapping[str, str]  # non-secret, including the TAO payload env
    secret_names: Sequence[str]
    labels: Mapping[str, str]
    host_port: int | None  # a fixed port from the services file, else None
    spec: ServiceSpec  # platforms that move the listening port rebuild the command from it


def build_deployment(ws: HasProject, want: Desired, job_id: str, lineage: str) -> Deployment:
    spec = want.spec
    env = {**spec.env, **payload.env_payload(want.platform, job_id, ws.refs)}
    return Deployment(
        service=want.name,
        job_id=job_id,
        network_arch=spec.network_arch,
        image=want.image,
        spec_hash=want.spec_hash,
        num_gpus=spec.num_gpus,
        inner_command=payload.inner_command(spec, job_id, want.platform, ws.refs),
        env=env,
        secret_names=tuple(spec.secrets),
        labels=labels.for_deployment(ws.project, lineage, want.name, job_id, want.spec_hash),
        host_port=spec.host_port,
        spec=spec,
    )
