"""Listing containers over the local Docker socket, without the docker SDK.

``plan`` and ``status`` only list containers. Importing the SDK (requests, urllib3, ...) and its
version handshake cost more than the listing itself, so the read-only path speaks the Engine API
directly: one GET on the unix socket. Everything that changes the world goes through the SDK.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any
from urllib.parse import quote

DEFAULT_SOCKET = "/var/run/docker.sock"


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
    status, reason, body = _get(path, f"/containers/json?{query}", timeout)
    if status != 200:
        message = body.decode("utf-8", "replace").strip()
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(message).get("message", message)
        raise RuntimeError(f"{status} {reason}: {message}")
    containers = json.loads(body)
    if not isinstance(containers, list):
        raise RuntimeError("the engine answered /containers/json with something other than a list")
    return containers


def get(path: str, target: str, timeout: float = 60.0) -> tuple[int, bytes]:
    """(status, body) of one GET on the engine's socket (an inspect: /containers/ID/json)."""
    status, _reason, body = _get(path, target, timeout)
    return status, body


def _get(path: str, target: str, timeout: float) -> tuple[int, str, bytes]:
    """One HTTP/1.0 GET over the unix socket: the engine answers with the whole body and closes,
    so there is no chunking or keep-alive to handle (and no http.client + ssl to import)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise RuntimeError(f"not an HTTP answer: {status_line[:80]!r}")
    return int(parts[1]), parts[2] if len(parts) > 2 else "", body
