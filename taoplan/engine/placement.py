"""Placement: a new job_id and the platform's allocations (ports...) for every create and replace of
one apply, with the host ports already held (state, retiring workloads included, and the TAO
skill's registry) kept out."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence

from taoplan.engine.plan import CREATE, REPLACE, Change
from taoplan.engine.workspace import Workspace
from taoplan.platforms.base import Deployment, Placement, Platform
from taoplan.spec.deployment import build_deployment
from taoplan.spec.desired import Desired
from taoplan.store.state import State


def place(
    ws: Workspace,
    state: State,
    platform: Callable[[str], Platform],
    changes: Sequence[Change],
    desired: Mapping[str, Desired],
) -> dict[str, tuple[Deployment, Placement]]:
    """Deployments and placements keyed by instance key, per platform in one ``prepare`` call."""
    by_platform: dict[str, list[Deployment]] = {}
    for change in changes:
        if change.action in (CREATE, REPLACE):
            want = desired[change.service]
            deployment = build_deployment(ws, want, str(uuid.uuid4()), state.lineage)
            by_platform.setdefault(want.platform, []).append(deployment)
    out: dict[str, tuple[Deployment, Placement]] = {}
    registry_entries = ws.registry.entries().values()
    placed: set[int] = set()  # host ports given out in this run, on any platform (tunnels are local too)
    for name, deployments in by_platform.items():
        taken = {r.host_port for r in state.records() if r.platform == name and r.host_port}
        taken |= {
            int(e["host_port"])
            for e in registry_entries
            if e.get("platform") == name and isinstance(e.get("host_port"), int)
        }
        placements = platform(name).prepare(deployments, taken | placed)
        for d in deployments:
            out[d.service] = (d, placements[d.job_id])
            port = placements[d.job_id].host_port
            if port is not None:
                placed.add(port)
    return out
