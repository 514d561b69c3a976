"""`plan --server-dry-run`: ask each platform whether it would accept what apply is about to start."""

from __future__ import annotations

from taoplan.engine.plan import CREATE, REPLACE, Plan
from taoplan.engine.rendering import render_services
from taoplan.engine.workspace import Workspace
from taoplan.spec.desired import Desired
from taoplan.store.state import State


def dry_run(ws: Workspace, plan: Plan, desired: dict[str, Desired], state: State) -> list[str]:
    """Problems found for the creates and replaces of ``plan``, one line each; nothing is changed."""
    starting = {c.service for c in plan.changes if c.action in (CREATE, REPLACE)}
    if not starting:
        return []
    problems: list[str] = []
    for r in render_services(ws, state, desired, starting):
        problems += r.platform.dry_run(r.deployment, r.placement, r.artifacts)
    return problems
