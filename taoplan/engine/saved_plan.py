"""Saved plans: `plan -out FILE` writes one, `apply FILE` applies exactly it or refuses (exit 6) if stale."""

from __future__ import annotations

import json
from pathlib import Path

from taoplan.common import fsutil
from taoplan.engine.plan import Plan
from taoplan.engine.workspace import Workspace
from taoplan.errors import ConfigError, StalePlanError
from taoplan.spec.desired import Desired
from taoplan.store.state import State


def save(path: Path, plan: Plan, ws: Workspace, desired: dict[str, Desired]) -> None:
    data = {
        **plan.to_saved(),
        "services_file": str(ws.file.resolve()),
        "desired_hashes": {name: want.spec_hash for name, want in desired.items()},
    }
    fsutil.atomic_write(path, json.dumps(data, indent=2) + "\n")


def load_for_apply(path: Path, ws: Workspace, state: State) -> tuple[Plan, dict[str, Desired]]:
    text = fsutil.read_text(path)
    if text is None:
        raise ConfigError(f"{path}: no such plan file")
    try:
        data = json.loads(text)
        if data.get("kind") != "taoplan-plan":
            raise ValueError("not a taoplan plan")
        plan = Plan.from_saved(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a taoplan plan file ({exc})") from None
    if plan.state_serial == 0 and state.serial == 0:
        state.lineage = plan.lineage  # planned against no state, and still none: this plan starts it
    if plan.lineage != state.lineage:
        raise StalePlanError(
            f"{path}: the plan was made for another state (lineage {plan.lineage}, state has {state.lineage})"
        )
    if plan.state_serial != state.serial:
        raise StalePlanError(
            f"{path}: stale plan: state changed since it was made (plan serial {plan.state_serial}, "
            f"state serial {state.serial}); run 'taoplan plan' again"
        )
    desired = ws.desired()
    hashes = {name: want.spec_hash for name, want in desired.items()}
    if hashes != data.get("desired_hashes"):
        raise StalePlanError(
            f"{path}: stale plan: the services file or image settings changed since it was made; run 'taoplan plan' again"
        )
    return plan, desired
