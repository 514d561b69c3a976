"""Local TCP ports: is one free on this host, and the first free one from a starting point."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import socket
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from taoplan.common import fsutil, procs
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
    pick the same port in the moment between choosing it and the container publishing it.

    Every look-and-claim happens under one flock on the reservations folder, so a claim is never
    seen half-written and a dead holder's claim is taken over by exactly one process.
    """
    directory = fsutil.ensure_private_dir(_reservations())
    path = directory / f"{scope.replace('/', '_')}-{port}"
    if path in _held:
        return True
    with _folder_lock(directory):
        try:
            holder = int((fsutil.read_text(path) or "0").strip() or 0)
        except ValueError:
            holder = 0
        if holder and holder != os.getpid() and procs.alive(holder):
            return False
        fsutil.atomic_write(path, str(os.getpid()), sync=False)
    _held.add(path)
    return True


@contextlib.contextmanager
def _folder_lock(directory: Path) -> Iterator[None]:
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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


def open_on_free_port(preferred: int | None, opener: Callable[[int], int], what: str) -> tuple[int, int]:
    """(port, pid) of a local forwarder that ``opener(port)`` starts: on ``preferred`` while it is free,
    else on the first free port. A port taken between the check and the forwarder's bind is retried on
    the next one (3 tries); the last failure is raised."""
    port = preferred
    last: PlatformError | None = None
    for _ in range(3):
        if not port or not bindable(port, reuse=True):
            port = first_free(set(), what=what)
        try:
            return port, opener(port)
        except PlatformError as exc:
            last, port = exc, None
    assert last is not None
    raise last
