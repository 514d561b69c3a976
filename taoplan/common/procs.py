"""Processes known by PID: alive or not, and what they run. Nothing is ever found or killed by name."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """True when a process with this PID exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def argv(pid: object) -> list[str] | None:
    """The command line of a live process; None when it is gone, a zombie, or unreadable."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    if state in ("Z", "X"):
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
