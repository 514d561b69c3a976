"""Local TCP ports: is one free on this host, and the first free one from a starting point."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Collection

from taoplan.errors import PlatformError

FIRST_PORT = 8080


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


def first_free(
    taken: Collection[int],
    start: int = FIRST_PORT,
    free: Callable[[int], bool] = bindable,
    what: str = "port",
) -> int:
    """The first port from ``start`` up that is not in ``taken`` and passes ``free``."""
    port = start
    while port in taken or not free(port):
        port += 1
        if port > 65535:
            raise PlatformError(f"no free {what} from {start} up")
    return port
