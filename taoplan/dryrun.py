"""`plan --server-dry-run`: ask each platform whether it would accept what apply is about to start."""

from __future__ import annotations

import uuid

from taoplan.apply import build_deployment
from taoplan.desired import Desired
from taoplan.plan import CREATE, REPLACE, Plan
from taoplan.platforms.base import Placement
from taoplan.state import State
from taoplan.workspace import Workspace


def dry_run(ws: Workspace, plan: Plan, desired: dict[str, Desired], state: State) -> list[str]:
    """Problems found for the creates and replaces of ``plan``, one line each; nothing is changed."""
    problems: list[str] = []
    for change in plan.changes:
        if change.action not in (CREATE, REPLACE):
            continue
        want = desired[change.service]
        platform = ws.platform(want.platform, state.lineage)
        deployment = build_deployment(ws, want, str(uuid.uuid4()), state.lineage)
        placement = Placement(host_port=want.spec.host_port)
        artifacts = platform.render(deployment, placement)
        problems += platform.dry_run(deployment, placement, artifacts)
    return problems
