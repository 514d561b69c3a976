"""One SSH connection to a login node: multiplexed, never interactive, every remote argument quoted.

All commands share one ControlMaster (socket under the state directory), so a round trip costs
about 0.13 s instead of a new handshake. ``BatchMode=yes``: a missing key or an unknown host key
fails at once instead of prompting. ssh joins its arguments into one string for the remote shell,
so callers build that string with :func:`quote` / :func:`command`, and data travels on stdin.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from taoplan.common import fsutil, hashing
from taoplan.errors import PlatformError

TRANSPORT_FAILURE = 255  # ssh's own exit code: the connection, not the remote command, failed
CONTROL_PERSIST = 120  # seconds the shared connection stays open after its last use
MASTER_RECHECK = 20.0
# ssh appends ".XXXXXXXXXXXXXXXX" to the socket path while creating it; sun_path holds 108 bytes.
MAX_CONTROL_PATH = 90


def quote(value: object) -> str:
    return shlex.quote(str(value))


def command(*argv: object) -> str:
    """A remote command line from arguments, each quoted."""
    return " ".join(quote(a) for a in argv)


@dataclass(frozen=True)
class Target:
    login: str  # user@host (already expanded)
    port: int = 22
    identity_file: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    # An ssh_config file (-F) that defines ``login`` as a Host alias (brev's ~/.brev/ssh_config): the
    # port, user and key then come from that file, and no -p is passed.
    config_file: str | None = None

    @property
    def display(self) -> str:
        return f"{self.login}:{self.port}"


NOISE = ("Warning: Permanently added", "debug")


def _is_usage_hint(line: str) -> bool:
    """docker's closing `Run 'docker run --help' for more information` (`See 'docker run --help'.` before
    Docker 23): the error is the line before."""
    return line.startswith(("Run '", "See '")) and "--help'" in line


@dataclass(frozen=True)
class Reply:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def transport_failed(self) -> bool:
        return self.code == TRANSPORT_FAILURE

    def message(self) -> str:
        """The most useful line of stderr (or stdout)."""
        lines = [line.strip() for line in (self.err or self.out).splitlines() if line.strip()]
        useful = [line for line in lines if not line.startswith(NOISE) and not _is_usage_hint(line)]
        return (useful or lines or [f"exit code {self.code}"])[-1]


def control_path(state_dir: Path, target: Target) -> Path:
    """The ControlMaster socket: under the state directory, or a private /tmp dir when that path is too long."""
    name = "cm-" + hashing.digest(f"{target.login}:{target.port}")[:10]
    path = state_dir / "ssh" / name
    if len(str(path)) > MAX_CONTROL_PATH:
        short = Path(tempfile.gettempdir()) / f"taoplan-ssh-{os.getuid()}"
        path = short / f"{hashing.digest(str(state_dir.resolve()))[:10]}-{name}"
    return path


class Connection:
    """Commands on one login node over one shared SSH connection."""

    def __init__(self, target: Target, state_dir: Path) -> None:
        self.target = target
        self.control = control_path(state_dir, target)
        self._lock = threading.Lock()
        self._checked = 0.0

    # ------------------------------------------------------------------------------------- argv

    def _config(self) -> list[str]:
        return ["-F", self.target.config_file] if self.target.config_file else []

    def options(self) -> list[str]:
        """ssh options common to every connection (no multiplexing settings).

        The user's ssh_options come first: for ssh the first value of an option wins.
        """
        args = self._config()
        args += [
            arg for key, value in sorted(self.target.options.items()) for arg in ("-o", f"{key}={value}")
        ]
        if not self.target.config_file:
            args += ["-p", str(self.target.port)]
        args += [
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=3",
        ]
        if self.target.identity_file:
            args += ["-i", self.target.identity_file, "-o", "IdentitiesOnly=yes"]
        return args

    def argv(self, *, multiplex: bool = True) -> list[str]:
        """``ssh`` and its options, without the destination."""
        if multiplex:
            mux = ["-o", f"ControlPath={self.control}", "-o", "ControlMaster=no"]
        else:
            mux = ["-o", "ControlPath=none", "-o", "ControlMaster=no"]
        return ["ssh", *self.options(), *mux]

    # ------------------------------------------------------------------------------------- master

    def _master_alive(self) -> bool:
        if not self.control.exists():
            return False
        check = subprocess.run(
            [
                "ssh",
                *self._config(),
                "-o",
                f"ControlPath={self.control}",
                "-O",
                "check",
                "--",
                self.target.login,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
        )
        return check.returncode == 0

    def ensure_master(self) -> None:
        """Start the shared connection if it is not up. It persists CONTROL_PERSIST s after its last use."""
        with self._lock:
            if time.monotonic() - self._checked < MASTER_RECHECK and self.control.exists():
                return
            if not self._master_alive():
                fsutil.ensure_private_dir(self.control.parent)
                log = self.control.with_name(self.control.name + ".log")
                # The master outlives this command: it must hold none of our pipes or fds (close_fds),
                # or whoever reads our output would wait for it to exit.
                with open(log, "ab") as err:
                    started = subprocess.run(
                        [
                            "ssh",
                            *self.options(),
                            "-o",
                            f"ControlPath={self.control}",
                            "-o",
                            "ControlMaster=auto",
                            "-o",
                            f"ControlPersist={CONTROL_PERSIST}",
                            "--",
                            self.target.login,
                            "true",
                        ],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        timeout=60,
                    )
                if started.returncode != 0:
                    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                    raise PlatformError(f"ssh {self.target.display}: {tail[0]}")
            self._checked = time.monotonic()

    # ------------------------------------------------------------------------------------- commands

    def run(self, remote: str, *, stdin: str | None = None, timeout: float = 120) -> Reply:
        """Run one remote shell command line (built with quote()/command()). Data goes on stdin."""
        self.ensure_master()
        try:
            proc = subprocess.run(
                [*self.argv(), "--", self.target.login, remote],
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return Reply(TRANSPORT_FAILURE, "", f"no reply within {timeout:g}s")
        return Reply(proc.returncode, proc.stdout, proc.stderr)

    def check(self, remote: str, *, stdin: str | None = None, what: str = "") -> str:
        """run(), raising PlatformError on any failure; returns stdout."""
        reply = self.run(remote, stdin=stdin)
        if not reply.ok:
            where = f"ssh {self.target.display}"
            raise PlatformError(f"{where}: {what + ': ' if what else ''}{reply.message()}")
        return reply.out

    def stream(self, remote: str) -> Iterator[str]:
        """The remote command's output, line by line, until it ends (for `logs --follow`)."""
        self.ensure_master()
        proc = subprocess.Popen(
            [*self.argv(), "--", self.target.login, remote],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                yield line.rstrip("\n")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
