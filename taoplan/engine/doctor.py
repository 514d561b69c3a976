"""`taoplan doctor`: is every platform in use reachable and able to run what the file asks for?"""

from __future__ import annotations

import os

from taoplan.common import fsutil, secrets
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
    return checks + secret_checks(ws)


def secret_checks(ws: Workspace) -> list[Check]:
    """Which secret names the services use are set, in the environment or in the credentials file
    (secrets_file, else ~/.config/tao/.env when it exists). Names only: no value is kept or shown."""
    configured = ws.config.secrets_file
    shown = configured or secrets.DEFAULT_FILE
    path = secrets.resolve(shown, ws.file.parent)
    names = sorted({s for spec in ws.config.services.values() for s in spec.secrets})
    out: list[Check] = []
    in_file: set[str] = set()
    if configured is not None or path.exists():
        why = secrets.problem(path)
        if why is None:
            try:
                in_file = secrets.names_in(path)
            except TaoplanError as exc:
                why = exc.message
        missing_anyway = [n for n in names if not os.environ.get(n)]
        if why is None:
            found = sorted(in_file & set(names))
            detail = f"{shown}: 0600 and yours; of the secrets the services use it sets {', '.join(found) or 'none'}"
            out.append(Check("credentials file", True, detail))
        else:
            ok = configured is not None and not path.exists() and not missing_anyway
            out.append(
                Check(
                    "credentials file", ok, f"{why} (every secret is set in the environment)" if ok else why
                )
            )
    for name in names:
        users = ", ".join(n for n, spec in ws.config.services.items() if name in spec.secrets)
        if os.environ.get(name):
            out.append(Check(f"secret {name}", True, f"set in the environment (used by {users})"))
        elif name in in_file and configured is not None:
            out.append(Check(f"secret {name}", True, f"set in {shown} (used by {users})"))
        elif name in in_file:
            fix = f"apply reads that file only with secrets_file: {shown} in {ws.file.name}"
            out.append(Check(f"secret {name}", False, f"set in {shown}, but {fix} (used by {users})"))
        else:
            fix = f"export {name} or add it to {shown}" if path.exists() else f"export {name}"
            out.append(Check(f"secret {name}", False, f"missing: {fix} before apply (used by {users})"))
    return out
