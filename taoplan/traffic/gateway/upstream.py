"""The upstream exchange: one pooled aiohttp client, the request forwarded, the reply judged.

- The caller's key never travels upstream: only Content-Type, Accept and the endpoint's own headers
  (a platform token, from ``Endpoint.headers``, in memory only) are sent.
- A whole reply is judged by ``taoplan.traffic.request.reply.classify`` (as ``taoplan request``
  judges it): not ready (202/503 with a loading type) -> 503 + Retry-After + the server's reason,
  and the service leaves routing at once; will never load -> 503 with its reason; the upstream's
  own 4xx keeps its status in the OpenAI shape; its 5xx -> 502.
- A connection refused, or closed before any answer, by a workload whose service has another
  routable one: sent there once more (a rollout stops workloads; see ``_connect``). Otherwise, and
  closed mid-answer -> 502; no answer within ``upstream_timeout`` -> 504.
  Streaming, after the first byte: an SSE error event, then the end of the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taoplan.platforms.common.health import CONNECTING, FATAL, WAIT, Verdict
from taoplan.traffic.gateway.asgi import answer
from taoplan.traffic.gateway.checks import to_server
from taoplan.traffic.gateway.errors import GatewayError, upstream_failed, upstream_timeout
from taoplan.traffic.gateway.streaming import SSEScan, error_event, reply_json, whole_as_events
from taoplan.traffic.gateway.table import Table
from taoplan.traffic.gateway.wire import SSE, dumps
from taoplan.traffic.request.reply import FAILED, OK, RETRY, classify
from taoplan.traffic.request.reply import FATAL as REPLY_FATAL

if TYPE_CHECKING:
    from taoplan.traffic.gateway.chat import Call
    from taoplan.traffic.gateway.checks import Incoming
    from taoplan.traffic.gateway.core import Gateway
    from taoplan.traffic.gateway.table import Service

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
CONNECT_TIMEOUT = 10.0
#: An idle pooled connection is dropped before the upstream's own idle timeout (5 s in uvicorn and in
#: llama.cpp's server) can close it. A close is not always seen in time: a Kubernetes port-forward does
#: not pass the pod's close on, and a request on such a connection fails with "server disconnected".
IDLE_KEEPALIVE = 4.0


def make_session() -> Any:
    """The pooled client: keep-alive connections to every upstream, no per-host cap, no cookies."""
    import aiohttp

    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=0, keepalive_timeout=IDLE_KEEPALIVE, ttl_dns_cache=60
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent",),
    )


_TIMEOUTS: dict[tuple[float, bool], Any] = {}


def _timeout(gw: Gateway, stream: bool) -> Any:
    seconds = gw.settings.upstream_timeout
    found = _TIMEOUTS.get((seconds, stream))
    if found is None:
        import aiohttp

        connect = min(CONNECT_TIMEOUT, seconds)
        if stream:  # a stream may last long; each wait for the next bytes is bounded instead
            found = aiohttp.ClientTimeout(total=None, connect=connect, sock_read=seconds)
        else:
            found = aiohttp.ClientTimeout(total=seconds, connect=connect)
        _TIMEOUTS[(seconds, stream)] = found
    return found


def _headers(call: Call) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    if call.defaulted:
        out.append((b"x-taoplan-defaulted", ",".join(call.defaulted).encode()))
    if call.service is not None:
        out.append((b"x-taoplan-service", call.service.name.encode()))
    return out


async def forward(gw: Gateway, call: Call, incoming: Incoming, send: Any) -> None:
    """Send the checked request to ``call.service`` (which a retry may change: see ``_connect``)."""
    import aiohttp

    sent = time.perf_counter()
    started = False  # has the client's response started (streaming)?
    try:
        reply = await _connect(gw, call, incoming)
        async with reply:
            ctype = reply.headers.get("Content-Type", "")
            if incoming.stream and reply.status == 200 and ctype.startswith("text/event-stream"):
                started = True
                await _pass_through(call, reply, send, sent)
                return
            raw = await reply.read()
            call.upstream_s = time.perf_counter() - sent
            status = reply.status
    except asyncio.TimeoutError:
        call.upstream_s = time.perf_counter() - sent
        if started:
            await _stream_error(
                call, send, "upstream_timeout", f"no data within {gw.settings.upstream_timeout:g}s"
            )
            return
        raise upstream_timeout(gw.settings.upstream_timeout) from None
    except aiohttp.ClientConnectorError as exc:
        service = _chosen(call)
        call.upstream_s = time.perf_counter() - sent
        gw.watcher.mark_unready(service, Verdict(WAIT, CONNECTING, type(exc).__name__))
        raise upstream_failed(
            f"cannot reach service {service.name} at {service.url}: {exc.os_error or exc}",
            "upstream_unreachable",
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        service = _chosen(call)
        call.upstream_s = time.perf_counter() - sent
        detail = (
            f"service {service.name} closed the connection before answering in full ({type(exc).__name__})"
        )
        if started:
            await _stream_error(call, send, "upstream_disconnected", detail)
            return
        raise upstream_failed(detail, "upstream_disconnected") from None
    await _whole(gw, call, _chosen(call), status, raw, incoming.stream, send)


def _chosen(call: Call) -> Service:
    assert call.service is not None  # chosen before anything is sent
    return call.service


def _target(gw: Gateway, service: Service) -> tuple[str, Mapping[str, str]]:
    assert service.url is not None
    headers = {**HEADERS, **service.headers} if service.headers else HEADERS
    return service.url.rstrip("/") + gw.refs.request.chat.path, headers


async def _connect(gw: Gateway, call: Call, incoming: Incoming) -> Any:
    """The reply of the chosen workload, once its headers are in. A workload that refuses the
    connection or drops it before a byte of answer (it was just stopped, or died) is not a failed
    request while its service has another routable workload: the request goes there, once. Nothing
    has reached the client yet, and nothing came back, so the retry is invisible to it."""
    import aiohttp

    service = _chosen(call)
    timeout = _timeout(gw, incoming.stream)
    url, headers = _target(gw, service)
    try:
        return await _open(gw, url, incoming.raw, headers, timeout)
    except aiohttp.ClientConnectionError as exc:
        if isinstance(exc, asyncio.TimeoutError):
            raise  # slow is not gone: another workload would not answer sooner
        if isinstance(exc, aiohttp.ClientConnectorError):
            gw.watcher.mark_unready(service, Verdict(WAIT, CONNECTING, type(exc).__name__))
        other = _another(gw, call, service)
        if other is None:
            raise
    if other.target.served_name != service.target.served_name:
        incoming = to_server(incoming, other.target.served_name)
    url, headers = _target(gw, other)
    return await _open(gw, url, incoming.raw, headers, timeout)


def _another(gw: Gateway, call: Call, failed: Service) -> Service | None:
    """Another routable workload for ``call``'s model, of the same service and arch (the body was
    checked for them); it takes over the call's in-flight count. None when there is none."""
    if call.model is None:
        return None
    try:
        other = gw.table.choose(call.model, frozenset((failed.job_id,)))
    except GatewayError:
        return None
    if other.name != failed.name or other.target.arch != failed.target.arch:
        return None
    gw.table.take(other)
    gw.table.release(failed)
    call.service = other
    return other


async def _open(gw: Gateway, url: str, raw: bytes, headers: Mapping[str, str], timeout: Any) -> Any:
    """The upstream's reply, once its headers are in. A pooled connection that the upstream had closed
    while idle fails before a byte of answer; the request then goes once more, on a new connection.
    A close is not always seen in time: a Kubernetes port-forward passes the pod's close on late, and
    an ssh tunnel turns it into a reset (ClientOSError) of the next request on that connection."""
    import aiohttp

    try:
        return await gw.session.post(url, data=raw, headers=headers, timeout=timeout)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise  # refused: a new connection to the same address would be refused too
        return await gw.session.post(url, data=raw, headers=headers, timeout=timeout)


async def _whole(
    gw: Gateway, call: Call, service: Service, status: int, raw: bytes, stream: bool, send: Any
) -> None:
    body = reply_json(raw)
    verdict = classify(status, body, gw.refs.request.chat)
    if status == 200 or verdict.kind == OK:
        if isinstance(body, dict):
            call.usage = body.get("usage")
            if gw.settings.log_content and call.content is not None:
                call.content["response"] = gw.reply_summary(body)
        if stream:
            if not isinstance(body, dict):
                raise upstream_failed(f"service {service.name} answered 200 with a body that is not JSON")
            payload = whole_as_events(body)
            call.ttft_s = time.perf_counter() - call.started
            await answer(call, send, 200, payload, [(b"cache-control", b"no-cache"), *_sse_headers(call)])
            return
        await answer(call, send, 200, raw, _headers(call))
        return
    if verdict.kind in (RETRY, REPLY_FATAL):
        kind = FATAL if verdict.kind == REPLY_FATAL else WAIT
        gw.watcher.mark_unready(service, Verdict(kind, verdict.error_type, verdict.message))
        raise Table.not_ready(service)
    assert verdict.kind == FAILED
    message = f"service {service.name} answered HTTP {status}"
    if verdict.message or verdict.error_type:
        message += (
            f": {verdict.error_type}: {verdict.message}" if verdict.message else f": {verdict.error_type}"
        )
    if 400 <= status < 500:
        raise GatewayError(
            status, message, type="invalid_request_error", code=verdict.error_type or "upstream_refused"
        )
    raise upstream_failed(message)


def _sse_headers(call: Call) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", SSE), *_headers(call)]


async def _pass_through(call: Call, reply: Any, send: Any, sent: float) -> None:
    """A streaming upstream: its bytes go out as they arrive; usage and [DONE] are noticed on the way."""
    scan = SSEScan()
    headers = [(b"content-type", SSE), (b"cache-control", b"no-cache"), *_headers(call)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    call.status = 200
    async for piece in reply.content.iter_any():
        if call.ttft_s is None:
            call.ttft_s = time.perf_counter() - call.started
        scan.feed(piece)
        call.bytes_out += len(piece)
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    call.upstream_s = time.perf_counter() - sent
    call.usage = scan.usage
    if not scan.done:
        call.error_type = "upstream_incomplete"
        await _stream_error(
            call, send, "upstream_disconnected", "the service ended the stream without [DONE]"
        )
        return
    call.finished = True
    await send({"type": "http.response.body", "body": b""})


async def _stream_error(call: Call, send: Any, code: str, message: str) -> None:
    event = error_event(message, "upstream_error", code)
    call.error_type = code
    call.bytes_out += len(event)
    call.finished = True
    await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


__all__ = ["HEADERS", "dumps", "forward", "make_session"]
