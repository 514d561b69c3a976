"""ASGI plumbing the handlers share: reading a header, sending a whole answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taoplan.traffic.gateway.wire import JSON

if TYPE_CHECKING:
    from taoplan.traffic.gateway.chat import Call
    from taoplan.traffic.gateway.errors import GatewayError


def header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def respond(
    send: Any,
    status: int,
    payload: bytes,
    ctype: bytes = JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    out = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": payload})


async def refuse(send: Any, error: GatewayError) -> None:
    await respond(send, error.status, error.payload(), headers=error.headers)


async def answer(
    call: Call, send: Any, status: int, payload: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """The final, whole answer of a chat request (status known): counted, then sent."""
    call.status = status
    call.bytes_out = len(payload)
    call.finished = True
    await respond(send, status, payload, JSON, headers)
