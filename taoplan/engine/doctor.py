"""`taoplan doctor`: is every platform in use reachable and able to run what the file asks for?"""

from __future__ import annotations

import os

from taoplan.common import fsutil
from taoplan.engine.workspace import Workspace
from taoplan.errors import TaoplanError
from taoplan.platforms.base import Check
from taoplan.spec.deployment import build_deployment


def run_checks(ws: Workspace) -> list[Check]:
    checks: list[Check] = []
    try:
        state = ws.store.load()
        fsutil.refuse_symlink(ws.store.dir)
        checks.append(Check("state", True, f"{ws.store.dir} (serial {state.serial})"))
    except TaoplanError as exc:
        return [Check("state", False, exc.message)]
    desired = ws.desired()
    by_platform: dict[str, list] = {}
    for want in desired.values():
        by_platform.setdefault(want.platform, []).append(
            build_deployment(ws, want, "00000000-0000-4000-8000-000000000000", state.lineage)
        )
    for name, deployments in sorted(by_platform.items()):
        try:
            platform_checks = ws.platform(name, state.lineage).doctor(deployments)
        except TaoplanError as exc:
            platform_checks = [Check(name, False, exc.message)]
        checks += [Check(f"{name}: {c.name}", c.ok, c.detail) for c in platform_checks]
    secrets = sorted({s for spec in ws.config.services.values() for s in spec.secrets})
    for secret in secrets:
        users = [n for n, spec in ws.config.services.items() if secret in spec.secrets]
        present = bool(os.environ.get(secret))
        detail = (
            f"set (used by {', '.join(users)})"
            if present
            else f"missing: export {secret} before apply (used by {', '.join(users)})"
        )
        checks.append(Check(f"secret {secret}", present, detail))
    return checks
