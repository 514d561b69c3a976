"""``POST /v1/chat/completions``, in order: caller (401), content type (415), size (413), JSON and
shape (400), model -> one of the service's workloads (404/400/503), key scope (403), the arch's rules (400), budget and
rpm (429); then the upstream, whole or streamed; then one request-log row and the metrics.

A client that goes away cancels the request (and so the upstream exchange): the disconnect watch
cancels this handler's task, the upstream connection is closed, and the row says 499.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taoplan.traffic.gateway import checks, upstream
from taoplan.traffic.gateway.asgi import header, respond
from taoplan.traffic.gateway.errors import GatewayError
from taoplan.traffic.gateway.wire import JSON

if TYPE_CHECKING:
    from taoplan.traffic.gateway.core import Gateway
    from taoplan.traffic.gateway.table import Service

CLIENT_CLOSED = 499  # nginx's code for "the client closed the request"


class ClientGone(Exception):
    """The client disconnected before the answer was complete."""


@dataclass
class Call:
    """What one chat request did, for its log row and metrics."""

    started: float = field(default_factory=time.perf_counter)
    time: float = field(default_factory=time.time)
    caller: str = "-"
    end_user: str | None = None
    service: Service | None = None  # the workload chosen (counted in flight until the request ends)
    model: str | None = None  # what the body named: a retry chooses among its workloads
    status: int = 0
    error_type: str | None = None
    upstream_s: float | None = None
    ttft_s: float | None = None
    usage: Any = None
    bytes_in: int = 0
    bytes_out: int = 0
    defaulted: tuple[str, ...] = ()
    content: dict[str, Any] | None = None
    gone: bool = False  # the client disconnected
    finished: bool = False  # the answer is complete: a disconnect now is the normal end


async def handle(gw: Gateway, scope: dict[str, Any], receive: Any, send: Any) -> None:
    call = Call()
    gw.in_flight += 1
    watch: asyncio.Future[Any] | None = None
    try:
        try:
            incoming = await _admit(gw, call, scope, receive)
            watch = _watch_disconnect(call, receive)
            await upstream.forward(gw, call, incoming, send)
        except GatewayError as exc:
            call.status, call.error_type = exc.status, exc.code or exc.type
            call.finished = True
            payload = exc.payload()
            call.bytes_out = len(payload)
            await respond(send, exc.status, payload, JSON, exc.headers)
        except ClientGone:
            call.status, call.error_type = CLIENT_CLOSED, "client_disconnected"
        except asyncio.CancelledError:
            if not call.gone:
                raise  # the server is shutting down for good: not a client matter
            call.status, call.error_type = CLIENT_CLOSED, "client_disconnected"
            _uncancel()
    finally:
        call.finished = True
        if watch is not None:
            watch.cancel()
        gw.in_flight -= 1
        if call.service is not None:
            gw.table.release(call.service)
        gw.record(call)


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()


def _watch_disconnect(call: Call, receive: Any) -> asyncio.Future[Any]:
    """A task that waits for the client's disconnect and then cancels this request's task."""
    task = asyncio.current_task()
    watch = asyncio.ensure_future(receive())

    def done(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or call.finished or task is None:
            return
        if fut.exception() is None and fut.result().get("type") == "http.disconnect":
            call.gone = True
            task.cancel()

    watch.add_done_callback(done)
    return watch


async def _admit(gw: Gateway, call: Call, scope: dict[str, Any], receive: Any) -> Any:
    """The checked request; ``call.service`` is the workload it goes to (counted in flight)."""
    caller, key = gw.auth.caller(header(scope, b"authorization"))
    call.caller = caller
    if not checks.content_type_ok(header(scope, b"content-type")):
        raise GatewayError(
            415, "the body must be JSON: send Content-Type: application/json", code="unsupported_media_type"
        )
    raw = await _read_body(gw.settings.max_body_bytes, header(scope, b"content-length"), receive, gw)
    call.bytes_in = len(raw)
    user_header = header(scope, b"x-taoplan-user")
    incoming = checks.parse(raw, user_header.decode("utf-8", "replace") if user_header else None)
    call.end_user = incoming.end_user
    # chosen and counted in flight in one step: a rollout that waits for 0 in flight never misses it
    call.model = incoming.model
    call.service = service = gw.table.pick(incoming.model)
    gw.auth.allow_service(key, service.name)
    incoming = checks.check(incoming, service.target.arch, gw.refs.request, gw.settings.sampling)
    incoming = checks.to_server(incoming, service.target.served_name)
    call.defaulted = incoming.defaulted
    await gw.auth.admit(key)
    if gw.settings.log_content:
        call.content = gw.content_of(incoming.body)
    return incoming


def _too_large(limit: int, gw: Gateway) -> GatewayError:
    return GatewayError(
        413,
        f"the body is over gateway.max_body ({gw.settings.max_body}, {limit} bytes)",
        code="body_too_large",
    )


async def _read_body(limit: int, declared: bytes | None, receive: Any, gw: Gateway) -> bytes:
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit, gw)
        except ValueError:
            raise GatewayError(400, "Content-Length is not a number", code="invalid_request") from None
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise _too_large(limit, gw)
        chunks.append(body)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
