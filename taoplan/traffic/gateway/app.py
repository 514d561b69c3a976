"""The ASGI app: a dispatch on method and path, the small endpoints, and one function that turns any
refusal into the OpenAI error shape. The chat path itself is ``chat``.

Nothing raised inside a handler reaches the client as a traceback: a ``GatewayError`` becomes its
answer; anything else is a 500 ``internal_error`` with a request id, and one line on stderr.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from taoplan.traffic.gateway.asgi import header, refuse, respond
from taoplan.traffic.gateway.chat import handle
from taoplan.traffic.gateway.errors import GatewayError, error_payload
from taoplan.traffic.gateway.wire import dumps

if TYPE_CHECKING:
    from taoplan.traffic.gateway.core import Gateway
    from taoplan.traffic.gateway.table import Service

Send = Any
Receive = Any


class App:
    """The ASGI callable uvicorn serves."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.routes = {
            ("POST", "/v1/chat/completions"): self.chat,
            ("GET", "/v1/models"): self.models,
            ("GET", "/health/live"): self.live,
            ("GET", "/health/ready"): self.ready,
            ("GET", "/metrics"): self.metrics,
            ("GET", "/openapi.json"): self.openapi,
        }
        self.paths = {path for _, path in self.routes}
        self._dashboard: Any = None  # taoplan.traffic.dashboard, imported on its first page

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        method = scope["method"]
        handler = self.routes.get((method, path))
        if handler is None and method == "HEAD":
            handler = self.routes.get(("GET", path))
        if handler is None and (path == "/" or path.startswith("/ui/")):
            handler = self.dashboard
        try:
            if handler is None:
                if path in self.paths:
                    allowed = ", ".join(sorted(m for m, p in self.routes if p == path))
                    raise GatewayError(
                        405, f"{method} is not allowed on {path} (use {allowed})", code="method_not_allowed",
                        headers=[(b"allow", allowed.encode())],
                    )  # fmt: skip
                raise GatewayError(404, f"no endpoint {path}; see /openapi.json", code="not_found")
            await handler(scope, receive, send)
        except GatewayError as exc:
            await refuse(send, exc)
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            await self.crashed(send, exc)

    async def crashed(self, send: Send, exc: BaseException) -> None:
        stamp = f"{time.time():.6f}"
        line = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
        print(f"taoplan gateway: internal error {stamp}: {line}", file=sys.stderr, flush=True)
        payload = error_payload(
            f"internal error (at {stamp}); see the gateway's output", "internal_error", "internal_error"
        )
        with contextlib.suppress(Exception):  # the response had already started
            await respond(send, 500, payload)

    # ----------------------------------------------------------------------------- endpoints

    async def chat(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await handle(self.gw, scope, receive, send)

    async def dashboard(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if self._dashboard is None:
            from taoplan.traffic.dashboard.routes import Dashboard

            self._dashboard = Dashboard(self.gw)
        await self._dashboard(scope, receive, send)

    async def models(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Each service once; ``x_taoplan`` says its readiness (ready: a request may go to one of its
        workloads) and, under ``replicas``, each workload's."""
        _caller, key = self.gw.auth.caller(header(scope, b"authorization"))
        table = self.gw.table
        data = []
        for name in table.names():
            if key is not None and key.services is not None and name not in key.services:
                continue
            service = table.speaker(name)
            assert service is not None
            t = service.target
            ready = service.routable
            data.append(
                {
                    "id": name,
                    "object": "model",
                    "created": _epoch(t.started_at),
                    "owned_by": "taoplan",
                    "x_taoplan": {
                        "ready": ready,
                        "readiness": "ready" if ready else service.reason,
                        "reason": None if ready else service.reason,
                        "message": service.message or None,
                        "arch": t.arch,
                        "platform": t.platform,
                        "job_id": t.job_id,
                        "num_gpus": t.num_gpus,
                        "started_at": t.started_at,
                        "replicas": [_workload(w) for w in table.workloads(name)],
                    },
                }
            )
        await respond(send, 200, dumps({"object": "list", "data": data}))

    async def live(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await respond(send, 200, dumps({"status": "live", "draining": self.gw.draining}))

    async def ready(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        table = self.gw.table
        ready = len(table.ready_names())
        body: dict[str, Any] = {"services": len(table.names()), "ready": ready}
        if self.gw.draining:
            body["status"] = "draining"
        else:
            body["status"] = "ready" if ready else "no_ready_service"
        await respond(send, 200 if body["status"] == "ready" else 503, dumps(body))

    async def metrics(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self.gw.metrics.in_flight = self.gw.in_flight
        self.gw.metrics.workloads = list(self.gw.table.services.values())
        payload, ctype = self.gw.metrics.render()
        await respond(send, 200, payload, ctype)

    async def openapi(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        from taoplan.traffic.gateway.openapi import document

        await respond(send, 200, dumps(document(self.gw.settings.listen, self.gw.table.names())))


def _workload(service: Service) -> dict[str, Any]:
    t = service.target
    return {
        "replica": service.key,
        "job_id": t.job_id,
        "ready": service.routable,
        "readiness": "ready" if service.routable else service.reason,
        "draining": t.draining,
        "retiring": t.retiring,
        "in_flight": service.inflight,
        "started_at": t.started_at,
    }


def _epoch(started_at: str | None) -> int:
    if not started_at:
        return 0
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
