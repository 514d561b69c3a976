"""Background port forwards that outlive the command that opened them: `ssh -N -L` for Slurm, the
Kubernetes forwarder for `access: port-forward`.

A forward is known by its PID and its spec, which state records; nothing is ever found or killed by
name. PIDs get reused and exited processes linger as zombies, so before trusting or signalling a
recorded PID we check that it is alive and that its command line carries exactly that forward.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from taoplan.common import procs
from taoplan.errors import PlatformError
from taoplan.platforms.common import ports

#: Tells a process's argv apart from others that carry the same spec (default: an ssh client).
Marker = Callable[[list[str]], bool]


def _is_ssh(argv: list[str]) -> bool:
    return os.path.basename(argv[0]) == "ssh"


def forward(local_port: int, host: str, port: int) -> str:
    return f"{local_port}:{host}:{port}"


def is_ours(pid: object, spec: str, *, flag: str = "-L", marker: Marker = _is_ssh) -> bool:
    """True when ``pid`` is a live process of ours forwarding exactly ``spec`` (``flag spec`` in its argv)."""
    argv = procs.argv(pid)
    if not argv or not marker(argv):
        return False
    return any(argv[i] == flag and argv[i + 1] == spec for i in range(len(argv) - 1))


def accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def spawn(
    argv: Sequence[str],
    local_port: int,
    log: Path,
    what: str,
    *,
    timeout: float = 20.0,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``argv`` in its own session (it survives the command and a Ctrl-C to its process group);
    return its PID once ``local_port`` accepts connections."""
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [
                f"exit code {proc.returncode}"
            ]
            raise PlatformError(f"{what} failed: {tail[0]}")
        if accepts(local_port):
            return proc.pid
        if time.monotonic() > deadline:
            proc.terminate()
            raise PlatformError(f"{what}: not listening after {timeout:g}s")
        time.sleep(0.05)


def open_tunnel(
    ssh_argv: Sequence[str], login: str, spec: str, local_port: int, log: Path, timeout: float = 20.0
) -> int:
    """Start ``ssh -N -L spec login``; return its PID once the local port answers."""
    argv = [*ssh_argv, "-N", "-o", "ExitOnForwardFailure=yes", "-L", spec, "--", login]
    return spawn(argv, local_port, log, f"tunnel {spec} via {login}", timeout=timeout)


def open_on_free_port(
    ssh_argv: Sequence[str], login: str, preferred: int | None, host: str, port: int, log: Path
) -> tuple[int, int]:
    """(local port, pid) of ``ssh -L`` to ``host:port``: on ``preferred`` while it is free, else the next free one."""
    return ports.open_on_free_port(
        preferred,
        lambda local: open_tunnel(ssh_argv, login, forward(local, host, port), local, log),
        what="local port for a tunnel",
    )


def close(pid: object, spec: str, *, wait: float = 5.0, flag: str = "-L", marker: Marker = _is_ssh) -> bool:
    """Stop the forward ``pid`` if it is still ours. True if it was running."""
    if not isinstance(pid, int) or not is_ours(pid, spec, flag=flag, marker=marker):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not is_ours(pid, spec, flag=flag, marker=marker):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def close_tunnel(pid: object, spec: str, wait: float = 5.0) -> bool:
    """Stop the ssh tunnel ``pid`` if it is still ours."""
    return close(pid, spec, wait=wait)
