"""Listing containers over the local Docker socket, without the docker SDK.

``plan`` and ``status`` only list containers. Importing the SDK (requests, urllib3, ...) and its
version handshake cost more than the listing itself, so the read-only path speaks the Engine API
directly: one GET on the unix socket. Everything that changes the world goes through the SDK.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from typing import Any
from urllib.parse import quote

DEFAULT_SOCKET = "/var/run/docker.sock"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def socket_path(base_url: str | None) -> str | None:
    """The socket file for a local engine URL; None for tcp:// and ssh:// engines."""
    if base_url is None:
        return DEFAULT_SOCKET
    if base_url.startswith("unix://"):
        return base_url[len("unix://") :] or DEFAULT_SOCKET
    return None


def list_containers(
    path: str, *, all: bool, labels: list[str], timeout: float = 60.0
) -> list[dict[str, Any]]:
    """GET /containers/json: the summary shape the SDK's ``containers.list(sparse=True)`` holds in attrs.

    Raises OSError when the engine cannot be reached and RuntimeError when it answers with an error.
    """
    query = f"all={int(all)}"
    if labels:
        query += "&filters=" + quote(json.dumps({"label": labels}, separators=(",", ":")))
    conn = _UnixConnection(path, timeout)
    try:
        conn.request("GET", f"/containers/json?{query}")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        message = body.decode("utf-8", "replace").strip()
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(message).get("message", message)
        raise RuntimeError(f"{response.status} {response.reason}: {message}")
    containers = json.loads(body)
    if not isinstance(containers, list):
        raise RuntimeError("the engine answered /containers/json with something other than a list")
    return containers
