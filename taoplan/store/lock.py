"""The state lock: one writer at a time, and whoever waits is told who holds it.

An flock on .taoplan/lock; the holder's owner, pid, host, time and command are written into it.
The kernel drops an flock when its holder dies, so a dead holder's lock is taken over
automatically; the leftover holder record tells us to warn about it.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taoplan.common import fsutil, procs
from taoplan.errors import LockHeldError

LOCK_FILE = "lock"


def _holder_text(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 65536).decode("utf-8", "replace")


def describe(holder: dict[str, Any]) -> str:
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('owner')}), "
        f"since {holder.get('time')}, running: {holder.get('command')}"
    )


def read_holder(state_dir: Path) -> dict[str, Any] | None:
    text = fsutil.read_text(state_dir / LOCK_FILE)
    if not text:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return None
    return holder if isinstance(holder, dict) else None


class StateLock:
    """``with StateLock(dir, timeout, command):`` holds the exclusive lock or raises LockHeldError (exit 5)."""

    def __init__(
        self,
        state_dir: Path,
        timeout: float = 0.0,
        command: str = "",
        warn: Callable[[str], None] | None = None,
    ):
        self.state_dir = state_dir
        self.timeout = timeout
        self.command = command or " ".join(
            os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)
        )
        self.warn = warn or (lambda msg: None)
        self.fd: int | None = None

    def __enter__(self) -> StateLock:
        fsutil.ensure_private_dir(self.state_dir)
        fd = fsutil.open_lock_file(self.state_dir / LOCK_FILE)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _parse(_holder_text(fd))
                    os.close(fd)
                    who = describe(holder) if holder else "another taoplan process"
                    raise LockHeldError(
                        f"state is locked by {who}; wait for it, or if it is gone run 'taoplan unlock'"
                    ) from None
                time.sleep(0.1)
        previous = _parse(_holder_text(fd))
        if previous:
            same_host = previous.get("host") == socket.gethostname()
            pid = previous.get("pid")
            if same_host and isinstance(pid, int) and not procs.alive(pid):
                self.warn(f"taking over the lock left by {describe(previous)}: that process is gone")
            else:
                self.warn(f"taking over a stale lock record of {describe(previous)}")
        holder = {
            "owner": _user(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": self.command,
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(holder).encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def force_unlock(state_dir: Path) -> dict[str, Any] | None:
    """Clear the holder record. Returns the record that was there. The flock itself dies with its holder."""
    path = state_dir / LOCK_FILE
    holder = read_holder(state_dir)
    fsutil.refuse_symlink(path)
    if path.exists():
        fd = fsutil.open_lock_file(path)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)
    return holder


def is_held(state_dir: Path) -> bool:
    path = state_dir / LOCK_FILE
    if not path.exists():
        return False
    fd = fsutil.open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return str(os.getuid())
