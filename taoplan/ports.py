"""Local TCP ports: is one free on this host, and the first free one from a starting point."""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
from collections.abc import Callable, Collection
from pathlib import Path

from taoplan import fsutil, procs
from taoplan.errors import PlatformError

FIRST_PORT = 8080
_held: set[Path] = set()


def bindable(port: int, *, reuse: bool = False) -> bool:
    """True when nothing on this host listens on ``port`` (no SO_REUSEADDR: a listener makes bind fail).

    ``reuse``: like a server that sets SO_REUSEADDR (ssh does), ignore connections in TIME_WAIT.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            return False
    return True


def _reservations() -> Path:
    return Path(os.environ.get("TAOPLAN_PORT_RESERVATIONS") or f"/tmp/taoplan-ports-{os.getuid()}")


def reserve(port: int, scope: str = "local") -> bool:
    """Claim ``port`` in ``scope`` for this process until it exits; False if another live taoplan
    process holds it. Two applies allocating at once (two projects, one Docker host) then never
    pick the same port in the moment between choosing it and the container publishing it."""
    directory = fsutil.ensure_private_dir(_reservations())
    path = directory / f"{scope.replace('/', '_')}-{port}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            try:
                holder = int((fsutil.read_text(path) or "0").strip() or 0)
            except ValueError:
                holder = 0
            if holder == os.getpid():
                return True
            if holder and procs.alive(holder):
                return False
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by a process that is gone
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        _held.add(path)
        return True
    return False


def claim(port: int) -> bool:
    """Free on this host and reserved for this process."""
    return bindable(port) and reserve(port)


@atexit.register
def _release() -> None:
    for path in _held:
        with contextlib.suppress(OSError):
            path.unlink()


def first_free(
    taken: Collection[int],
    start: int = FIRST_PORT,
    free: Callable[[int], bool] = claim,
    what: str = "port",
) -> int:
    """The first port from ``start`` up that is not in ``taken`` and passes ``free``."""
    port = start
    while port in taken or not free(port):
        port += 1
        if port > 65535:
            raise PlatformError(f"no free {what} from {start} up")
    return port
