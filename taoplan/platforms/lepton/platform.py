"""Platform `lepton`: one DGX Cloud Lepton Deployment per service, through the real leptonai SDK.

The deployment is rendered from templates/lepton/deployment.json.j2 (`taoplan render` shows it as
JSON) and apply sends exactly that object. Its secrets are workspace secrets of its own
(TAOPLAN_<job8>_<NAME>, rendered in secrets.json with placeholders and filled from the environment
in memory at apply), referenced by ``secret_name_ref``; no value is ever in the spec. Every deployment
is named ``tao-<service>-<job8>`` (at most 36 characters) and labelled with taoplan's labels, so
observe() lists this project's workloads by label and destroy deletes exactly what it owns.

The endpoint (``status.endpoint.external_endpoint``) wants ``Authorization: Bearer <token>``: the
token named by ``endpoint_token_secret``, or the one Lepton generates, read back from the deployment
when needed. It travels in ``Endpoint.headers`` only, never into state, the registry or a log.

This class is the Platform interface of platforms/base.py and nothing more: each call goes to the
module that does that job: names, api, objects, observe, doctor.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from taoplan.errors import ConfigError, TaoplanError
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
from taoplan.spec.platform_settings import LeptonConfig

from . import capacity, doctor, objects, observe
from .api import Session
from .names import JOB_ID

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec
    from taoplan.store.state import ServiceRecord

#: Seconds a serving endpoint is handed out again without asking the workspace.
ENDPOINT_TTL = 2.0


class Lepton:
    name: ClassVar[str] = "lepton"
    Config: ClassVar[type[BaseModel]] = LeptonConfig

    def __init__(self, config: LeptonConfig, ctx: PlatformContext) -> None:
        self.session = Session(config, ctx)
        self._settings_problem: ConfigError | None = None  # from the last observe(); raised by describe()
        self._names: dict[str, str] = {}  # job_id -> deployment name, for cheap probes
        self._served: dict[str, tuple[float, Endpoint]] = {}  # job_id -> (when, a serving endpoint)
        self._capacity = shared.Capacity.not_known("the node group was not read (no refresh yet)")

    @property
    def config(self) -> LeptonConfig:
        return self.session.config

    def warm(self, writing: bool = False) -> None:
        import leptonai.api.v2  # noqa: F401 - imports are not safe to race from threads

    # ----------------------------------------------------------------------------- planning facts

    def replace_strategy(self, num_gpus: int, host_port: int | None) -> tuple[bool, str]:
        return True, ""  # the GPUs free, read at refresh, decide (engine.rollout)

    def describe(self, spec: ServiceSpec) -> tuple[str, ...]:
        if self._settings_problem is not None:
            raise self._settings_problem
        cfg = self.config
        token = (
            f"the endpoint token in {cfg.endpoint_token_secret}"
            if cfg.endpoint_token_secret
            else "a token Lepton generates"
        )
        return (
            f"lepton: Deployment (1 replica, shape {cfg.resource_shape} on node group {cfg.node_group}) "
            f"in workspace {cfg.workspace_id or '$LEPTON_WORKSPACE_ID'}; endpoint with {token}",
        )

    # ----------------------------------------------------------------------------- render

    def prepare(self, deployments: Sequence[Deployment], taken: set[int]) -> dict[str, Placement]:
        problems = doctor.name_problems(self.session, deployments)
        if problems:
            raise ConfigError(problems[0], lines=problems)
        if not deployments:
            return {}
        values = objects.placement_values(self.session)
        return {d.job_id: Placement(values=values) for d in deployments}

    def render(self, deployment: Deployment, placement: Placement) -> list[Artifact]:
        return objects.render(self.session, deployment, placement)

    # ----------------------------------------------------------------------------- apply

    def start(self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]) -> Started:
        created = objects.create(self.session, deployment, artifacts)
        name = str(created.metadata.name)
        self._names[deployment.job_id] = name
        endpoint = created.status.endpoint if created.status is not None else None
        return Started(
            host_url=(endpoint.external_endpoint or None) if endpoint is not None else None,
            docker_url=(endpoint.internal_endpoint or None) if endpoint is not None else None,
            platform_job_id=name,
            extra={"lepton_workspace": self.session.workspace_id},
        )

    def dry_run(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> list[str]:
        return doctor.dry_run(self.session, deployment, placement, artifacts)

    def stop(self, record: ServiceRecord) -> None:
        name = record.platform_job_id or self._name_of(record.job_id)
        objects.remove(self.session, name, record.job_id)

    def remove(self, job_id: str) -> None:
        objects.remove(self.session, self._name_of(job_id), job_id)

    def _name_of(self, job_id: str) -> str | None:
        if job_id in self._names:
            return self._names[job_id]
        dep = observe.find(self.session, job_id)
        return str(dep.metadata.name) if dep is not None else None

    # ----------------------------------------------------------------------------- observe

    def observe(self) -> dict[str, Observation]:
        deps = observe.ours(self.session)
        self._names.update({(d.metadata.labels or {})[JOB_ID]: str(d.metadata.name) for d in deps})
        found = {}
        for dep in deps:
            obs = observe.observation(self.session, dep)
            found[obs.job_id] = obs
        self._settings_problem = None
        try:  # located errors in the settings, raised by describe() for what would start
            self.session.shape()
        except ConfigError as exc:
            self._settings_problem = exc
        self._capacity = self._read_capacity()
        return found

    def _read_capacity(self) -> shared.Capacity:
        ours = {name: job_id for job_id, name in self._names.items()}
        try:
            return capacity.read(self.session, ours)
        except TaoplanError as exc:  # no right to list nodes, or the settings are wrong: never a guess
            return shared.Capacity.not_known(f"cannot read the node group's nodes: {exc.message}")

    def capacity(self, wanted: tuple[int, ...]) -> shared.Capacity:
        """What observe() read of the node group's nodes (one reading per refresh)."""
        return self._capacity

    def probe(self, job_id: str) -> Observation:
        return observe.probe(self.session, job_id, self._names.get(job_id))

    def endpoint(self, record: ServiceRecord, reopen: bool = True) -> Endpoint:
        """The external endpoint with its Bearer token while Lepton runs a replica. The readiness wait
        asks before every poll: an endpoint that serves is remembered for ENDPOINT_TTL seconds, so the
        workspace sees at most one GET per service in that time (a replica that dies meanwhile shows
        as an error reply of the endpoint until then)."""
        if record.platform_job_id:
            self._names[record.job_id] = record.platform_job_id
        at, served = self._served.get(record.job_id, (0.0, None))
        if served is not None and time.monotonic() - at < ENDPOINT_TTL:
            return served
        try:
            found = observe.endpoint(self.session, record)
        except TaoplanError as exc:
            return Endpoint(None, exc.message)
        if found.url is not None:
            self._served[record.job_id] = (time.monotonic(), Endpoint(found.url, headers=found.headers))
        else:
            self._served.pop(record.job_id, None)
        return found

    def logs(self, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]:
        return observe.logs(self.session, record, tail, follow)

    def doctor(self, deployments: Sequence[Deployment]) -> list[Check]:
        return doctor.doctor(self.session, deployments)


PLATFORM = Lepton
