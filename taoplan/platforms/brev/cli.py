"""The brev CLI, called safely: stdin from /dev/null (brev reads instance names, and its login prompt's
answer, from stdin), a timeout, DO_NOT_TRACK=1, the trailing instance-name line removed, and a
logged-out CLI noticed by its prompt and logged in headless with BREV_API_TOKEN, never interactively.

Facts (brevdev/brev-cli v0.6.327): `ls --json` prints {"workspaces": [...]} or {"workspaces": null}
(v0.6.317-322: a bare list); a logged-out command prints "... would you like to log in? [Y/n]: " on
stdout and fails with EOF on a closed stdin; every error exits 1; with piped stdout, exec/create/
start/stop/delete print the instance name after their output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Any

from taoplan.errors import PlatformError

TOKEN_VAR = "BREV_API_TOKEN"
LOGGED_OUT = "would you like to log in?"
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Instance:
    """One entry of `brev ls --json`."""

    name: str
    id: str
    status: str  # RUNNING STARTING STOPPING DEPLOYING STOPPED DELETING FAILURE UNHEALTHY
    shell_status: str
    build_status: str = ""
    instance_type: str = ""

    @property
    def ready(self) -> bool:
        return self.status == "RUNNING" and self.shell_status == "READY"

    @property
    def display(self) -> str:
        return f"{self.name} ({self.status}, shell {self.shell_status})"


@dataclass(frozen=True)
class Result:
    code: int
    out: str  # trailing instance-name lines removed
    err: str

    def message(self) -> str:
        lines = [line.strip() for line in (self.err + "\n" + self.out).splitlines() if line.strip()]
        lines = [line for line in lines if LOGGED_OUT not in line]
        return lines[-1] if lines else f"exit code {self.code}"


def strip_names(out: str, names: tuple[str, ...]) -> str:
    """Drop the instance-name lines brev prints after a command's output when stdout is a pipe."""
    lines = out.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for name in reversed(names):
        if lines and lines[-1] == name:
            lines.pop()
        elif lines and lines[-1].endswith(name):  # output without a final newline, then the name
            lines[-1] = lines[-1][: -len(name)]
    return "\n".join(lines) + ("\n" if lines else "")


def parse_ls(text: str) -> list[Instance]:
    """`brev ls --json` in either shape; null is an empty list."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise PlatformError(f"brev ls --json printed no JSON: {text.strip()[:200]!r}") from None
    items: Any = data.get("workspaces") if isinstance(data, dict) else data
    if items is None:
        return []
    if not isinstance(items, list):
        raise PlatformError("brev ls --json: 'workspaces' is not a list")
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("name"):
            out.append(
                Instance(
                    name=str(item["name"]),
                    id=str(item.get("id") or ""),
                    status=str(item.get("status") or ""),
                    shell_status=str(item.get("shell_status") or ""),
                    build_status=str(item.get("build_status") or ""),
                    instance_type=str(item.get("instance_type") or ""),
                )
            )
    return out


class BrevCLI:
    """Every call to the `brev` binary goes through :meth:`run`."""

    def __init__(self, binary: str = "brev") -> None:
        self.binary = binary
        self._login_lock = threading.Lock()
        self._logged_in_now = False

    def installed(self) -> str | None:
        return shutil.which(self.binary)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != TOKEN_VAR}
        env["DO_NOT_TRACK"] = "1"
        return env

    def raw(
        self, args: list[str], *, timeout: float = DEFAULT_TIMEOUT, names: tuple[str, ...] = ()
    ) -> Result:
        """One call, never interactive. ``names``: instance names brev echoes after the output."""
        if self.installed() is None:
            raise PlatformError("brev: the brev CLI is not installed (https://docs.nvidia.com/brev)")
        try:
            proc = subprocess.run(
                [self.binary, *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self._env(),
            )
        except subprocess.TimeoutExpired:
            raise PlatformError(f"brev {args[0]}: no answer within {timeout:g}s") from None
        return Result(proc.returncode, strip_names(proc.stdout, names), proc.stderr)

    def run(
        self, args: list[str], *, timeout: float = DEFAULT_TIMEOUT, names: tuple[str, ...] = ()
    ) -> Result:
        """raw(), logging in once with BREV_API_TOKEN and retrying when brev says it is logged out."""
        result = self.raw(args, timeout=timeout, names=names)
        if result.code != 0 and LOGGED_OUT in result.out:
            self.login()
            result = self.raw(args, timeout=timeout, names=names)
            if result.code != 0 and LOGGED_OUT in result.out:
                raise PlatformError("brev: still logged out after `brev login --token` with BREV_API_TOKEN")
        return result

    def check(self, args: list[str], *, timeout: float = DEFAULT_TIMEOUT, names: tuple[str, ...] = ()) -> str:
        result = self.run(args, timeout=timeout, names=names)
        if result.code != 0:
            raise PlatformError(f"brev {args[0]} failed: {result.message()}")
        return result.out

    def login(self) -> None:
        """`brev login --token` with BREV_API_TOKEN (the only headless login brev has). The token is on
        that one short-lived process's argv, because brev-cli reads it from no other place."""
        with self._login_lock:
            if self._logged_in_now:
                return
            token = os.environ.get(TOKEN_VAR)
            if not token:
                raise PlatformError(
                    f"brev: the CLI is logged out and {TOKEN_VAR} is not set "
                    "(set it, or run `brev login` once in a terminal)"
                )
            result = self.raw(["login", "--token", token], timeout=60)
            if result.code != 0:
                message = result.message().replace(token, "***")
                raise PlatformError(f"brev: login with {TOKEN_VAR} failed: {message}")
            self._logged_in_now = True

    def logged_in(self) -> tuple[bool, str]:
        """Whether the CLI is logged in, asked without answering its prompt (stdin is /dev/null)."""
        result = self.raw(["ls", "--json"], timeout=60)
        if result.code == 0:
            return True, "logged in"
        if LOGGED_OUT in result.out:
            return False, "logged out"
        return False, result.message()

    # ------------------------------------------------------------------------------------- verbs

    def ls(self) -> list[Instance]:
        return parse_ls(self.check(["ls", "--json"], timeout=60))

    def find(self, name: str) -> tuple[Instance | None, list[Instance]]:
        listed = self.ls()
        return next((i for i in listed if i.name == name), None), listed

    def create(self, name: str, type_: str, timeout: int) -> None:
        self.check(["create", name, "-t", type_, "-d", "--timeout", str(timeout)], timeout=300, names=(name,))

    def start(self, name: str) -> None:
        self.check(["start", name], timeout=300, names=(name,))

    def delete(self, name: str) -> None:
        self.check(["delete", name], timeout=120, names=(name,))

    def refresh(self) -> None:
        self.check(["refresh"], timeout=120)

    def exec_probe(self, name: str, timeout: float) -> Result:
        """`brev exec NAME "echo ok"`: safe to run twice (brev replays a failed command)."""
        result = self.run(["exec", name, "echo taoplan-ok"], timeout=timeout, names=(name,))
        if result.code == 0 and "taoplan-ok" not in result.out:
            return Result(1, result.out, result.err or "no answer from the instance")
        return result
