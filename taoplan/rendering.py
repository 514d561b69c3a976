"""`taoplan render`: the artifacts apply would run, without touching any platform."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from taoplan import ports
from taoplan.apply import build_deployment
from taoplan.errors import ConfigError
from taoplan.platforms.base import Artifact, Placement
from taoplan.state import State
from taoplan.workspace import Workspace


def render_all(ws: Workspace, state: State, names: tuple[str, ...]) -> Iterator[tuple[str, Artifact]]:
    desired = ws.desired()
    unknown = [n for n in names if n not in desired]
    if unknown:
        raise ConfigError(f"no service named {unknown[0]!r} in {ws.file}")
    taken = {r.host_port for r in state.services.values() if r.host_port}
    taken |= {s.host_port for s in ws.config.services.values() if s.host_port}
    for name, want in desired.items():
        if names and name not in names:
            continue
        record = state.services.get(name)
        current = record is not None and record.spec_hash == want.spec_hash
        job_id = record.job_id if current and record else str(uuid.uuid4())
        port = want.spec.host_port or (record.host_port if current and record else None)
        if port is None:
            port = ports.first_free(taken, free=lambda _: True)  # offline: apply checks the host
            taken.add(port)
        deployment = build_deployment(ws, want, job_id, state.lineage)
        for artifact in ws.platform(want.platform, state.lineage).render(
            deployment, Placement(host_port=port)
        ):
            yield name, artifact
