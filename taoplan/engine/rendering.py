"""Render what apply would run, without touching any platform: for `taoplan render` and
`plan --server-dry-run`."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from taoplan.engine.workspace import Workspace
from taoplan.errors import ConfigError
from taoplan.platforms.base import Artifact, Deployment, Placement, Platform
from taoplan.platforms.common import ports
from taoplan.spec.deployment import build_deployment
from taoplan.spec.desired import Desired
from taoplan.store.state import State


@dataclass(frozen=True)
class Rendered:
    service: str
    platform: Platform
    deployment: Deployment
    placement: Placement
    artifacts: list[Artifact]


def render_services(
    ws: Workspace, state: State, desired: Mapping[str, Desired], names: Collection[str] = ()
) -> Iterator[Rendered]:
    """The artifacts of ``names`` (default: every service). A service that is up to date keeps its
    job_id and port; a new one gets a fresh job_id and the first port free of state (apply checks
    the host itself)."""
    unknown = [n for n in names if n not in desired]
    if unknown:
        raise ConfigError(f"no service named {unknown[0]!r} in {ws.file}")
    taken = {r.host_port for r in state.services.values() if r.host_port}
    taken |= {s.host_port for s in ws.config.services.values() if s.host_port}
    for name, want in desired.items():
        if names and name not in names:
            continue
        record = state.services.get(name)
        current = record if record is not None and record.spec_hash == want.spec_hash else None
        port = want.spec.host_port or (current.host_port if current else None)
        if port is None:
            port = ports.first_free(taken, free=lambda _: True)
            taken.add(port)
        deployment = build_deployment(
            ws, want, current.job_id if current else str(uuid.uuid4()), state.lineage
        )
        placement = Placement(host_port=port)
        platform = ws.platform(want.platform, state.lineage)
        yield Rendered(name, platform, deployment, placement, platform.render(deployment, placement))


def render_all(ws: Workspace, state: State, names: tuple[str, ...]) -> Iterator[tuple[str, Artifact]]:
    for rendered in render_services(ws, state, ws.desired(), names):
        for artifact in rendered.artifacts:
            yield rendered.service, artifact
