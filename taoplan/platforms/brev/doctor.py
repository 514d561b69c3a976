"""`taoplan doctor` for brev: the CLI is installed and logged in (asked with stdin at /dev/null, so its
prompt gets EOF instead of an answer), the instance is RUNNING with its shell READY, docker answers
on the VM over ssh, and the GPU host preflight there (platforms/common/preflight.py; or gpus: none).
Nothing is created or started."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from taoplan.errors import PlatformError
from taoplan.platforms.base import Check, Deployment
from taoplan.platforms.brev.cli import TOKEN_VAR
from taoplan.platforms.brev.instance import seen
from taoplan.platforms.common import preflight

if TYPE_CHECKING:
    from taoplan.platforms.brev.platform import Brev


def checks(platform: Brev, deployments: Sequence[Deployment]) -> list[Check]:
    cli, config, name = platform.cli, platform.config, platform.instance
    path = cli.installed()
    if path is None:
        return [Check("brev CLI", False, "brev is not on PATH (install it: https://docs.nvidia.com/brev)")]
    out = [Check("brev CLI", True, path)]
    logged_in, detail = cli.logged_in()
    if not logged_in and detail == "logged out":
        if not os.environ.get(TOKEN_VAR):
            out.append(Check("login", False, f"logged out and {TOKEN_VAR} is not set"))
            return out
        try:
            cli.login()
        except PlatformError as exc:
            out.append(Check("login", False, exc.message))
            return out
        detail = f"logged in with {TOKEN_VAR}"
    elif not logged_in:
        out.append(Check("login", False, detail))
        return out
    out.append(Check("login", True, detail))
    try:
        found, listed = cli.find(name)
    except PlatformError as exc:
        out.append(Check("instance", False, exc.message))
        return out
    if found is None:
        if config.create is not None:
            out.append(Check("instance", True, f"{name}: apply creates it ({config.create.type})"))
        else:
            out.append(Check("instance", False, f"{name!r} not found; brev ls shows: {seen(listed)}"))
        return out
    if not found.ready:
        hint = (
            " (start_stopped: true starts it)" if found.status == "STOPPED" and config.start_stopped else ""
        )
        out.append(
            Check("instance", found.status == "STOPPED" and config.start_stopped, found.display + hint)
        )
        return out
    out.append(Check("instance", True, found.display))
    vm = platform.vm()
    try:
        info = vm.info()
    except PlatformError as exc:
        out.append(Check("docker", False, exc.message))
        return out
    out.append(Check("docker", True, f"{name}: Docker {info.get('ServerVersion')} over ssh"))
    if config.gpus == "none":
        return [*out, Check("GPU runtime", True, preflight.SKIPPED)]
    host = preflight.ShellHost(
        name, lambda remote, stdin: vm.run(remote, stdin=stdin, timeout=300), lambda: info
    )
    return out + preflight.preflight(host, deployments, platform.ctx.refs.service.gpu_host)
