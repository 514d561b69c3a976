"""Background port forwards (``ssh -N -L LOCAL:HOST:PORT``) that outlive the command that opened them.

A tunnel is known by its PID and its forward spec, which state records; nothing is ever found or
killed by name. PIDs get reused and exited processes can linger as zombies, so before trusting or
signalling a recorded PID we check that /proc/PID/cmdline is an ssh carrying exactly that forward,
and a zombie counts as dead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from taoplan.errors import PlatformError


def forward(local_port: int, host: str, port: int) -> str:
    return f"{local_port}:{host}:{port}"


def is_ours(pid: int | None, spec: str) -> bool:
    """True when ``pid`` is a live ssh forwarding exactly ``spec``."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    if state in ("Z", "X"):
        return False
    words = [a.decode(errors="replace") for a in argv if a]
    if not words or os.path.basename(words[0]) != "ssh":
        return False
    return any(words[i] == "-L" and words[i + 1] == spec for i in range(len(words) - 1))


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def open_tunnel(
    ssh_argv: Sequence[str], login: str, spec: str, local_port: int, log: Path, timeout: float = 20.0
) -> int:
    """Start ``ssh -N -L spec login`` in its own session; return its PID once the local port answers."""
    argv = [*ssh_argv, "-N", "-o", "ExitOnForwardFailure=yes", "-L", spec, "--", login]
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # survives the command (and a Ctrl-C to its process group)
        )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [
                f"exit code {proc.returncode}"
            ]
            raise PlatformError(f"tunnel {spec} via {login} failed: {tail[0]}")
        if _accepts(local_port):
            return proc.pid
        if time.monotonic() > deadline:
            proc.terminate()
            raise PlatformError(f"tunnel {spec} via {login}: not listening after {timeout:g}s")
        time.sleep(0.1)


def close_tunnel(pid: int | None, spec: str, wait: float = 5.0) -> bool:
    """Stop the tunnel ``pid`` if it is still ours. True if it was running."""
    if pid is None or not is_ours(pid, spec):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not is_ours(pid, spec):
            return True
        time.sleep(0.05)
    if is_ours(pid, spec):
        os.kill(pid, signal.SIGKILL)
    return True
