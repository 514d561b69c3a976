"""The dashboard's paths. Pages (no data in them, so no key needed to load one):

    GET /                          services and cost
    GET /ui/services/NAME          one service: chart, errors, last requests, logs
    GET /ui/chat/NAME              a chat with one service (through /v1/chat/completions)
    GET /ui/static/FILE            the stylesheet and scripts

JSON, with the gateway's key (``Authorization: Bearer``; never in a URL) under ``auth: keys``; a key
sees only the services it may use (403 for another, as the chat endpoint says it):

    GET /ui/api/services                     the services table
    GET /ui/api/services/NAME                the table's row and the last hour's activity
    GET /ui/api/services/NAME/logs?tail=N    the platform's log tail (N <= 2000, default 200)
    GET /ui/api/services/NAME/form           the chat form: sampling fields, defaults, ranges, media
    GET /ui/api/cost?window=1h|24h|7d        cost and requests per caller and end user

Every refusal is the gateway's error shape, 4xx for bad input. Blocking work (the store, the
platforms) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from taoplan.errors import TaoplanError
from taoplan.traffic.dashboard import activity, live, pages
from taoplan.traffic.gateway.asgi import header, respond
from taoplan.traffic.gateway.errors import GatewayError, bad_request, not_found
from taoplan.traffic.gateway.wire import dumps

if TYPE_CHECKING:
    from collections.abc import Callable

    from taoplan.traffic.gateway.core import Gateway
    from taoplan.traffic.gateway.table import Service

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PAGES = {"services": ("service.html", "service"), "chat": ("chat.html", "chat")}
DEFAULT_TAIL = 200
JSON_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


class Dashboard:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.observer = live.Observer(gw)
        self.reader = activity.Reader(gw.store.engine)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            raise GatewayError(
                405, f"{method} is not allowed on {scope['path']} (use GET)", code="method_not_allowed",
                headers=[(b"allow", b"GET, HEAD")],
            )  # fmt: skip
        parts = [unquote(p) for p in scope["path"].split("/")[1:]]
        if parts == [""]:
            await self.page(send, "index.html", "index", None)
        elif parts[:2] == ["ui", "static"] and len(parts) == 3 and parts[2] in pages.STATIC:
            await respond(
                send, 200, pages.static(parts[2]), pages.STATIC[parts[2]], [(b"cache-control", b"no-cache")]
            )
        elif parts[0:1] == ["ui"] and len(parts) == 3 and parts[1] in PAGES:
            template, kind = PAGES[parts[1]]
            await self.page(send, template, kind, _name(parts[2]))
        elif parts[:2] == ["ui", "api"]:
            await self.api(scope, send, parts[2:])
        else:
            raise not_found(f"no page {scope['path']}; the dashboard is at /")

    async def page(self, send: Any, template: str, kind: str, name: str | None) -> None:
        body = pages.render(template, page=kind, service=name, auth=self.gw.settings.auth)
        await respond(send, 200, body, pages.HTML, pages.HEADERS)

    async def api(self, scope: dict[str, Any], send: Any, parts: list[str]) -> None:
        _caller, key = self.gw.auth.caller(header(scope, b"authorization"))

        def allowed(name: str) -> bool:
            return key is None or key.services is None or name in key.services

        query = _query(scope)
        if parts == ["services"]:
            body = await live.services(self.gw, self.observer, allowed)
        elif parts == ["cost"]:
            window = query.get("window", "24h")
            if window not in activity.WINDOWS:
                raise bad_request(
                    f"window: expected one of {', '.join(activity.WINDOWS)}",
                    code="invalid_window",
                    param="window",
                )
            scope_ = None if key is None or key.services is None else frozenset(key.services)
            body = await self.blocking(activity.cost, self.gw, self.reader, window, scope_)
        elif len(parts) in (2, 3) and parts[0] == "services":
            service = self.service(parts[1], key)
            body = await self.about(service, parts[2] if len(parts) == 3 else None, query)
        else:
            raise not_found(f"no endpoint {scope['path']}; see the list in the dashboard's docs")
        await respond(send, 200, dumps(body), headers=JSON_HEADERS)

    def service(self, name: str, key: Any) -> Service:
        """The workload that stands for a service (or an instance key) on its page."""
        found = self.gw.table.speaker(_name(name))
        if found is None:
            raise not_found(f"no service named {name!r}", code="service_not_found")
        self.gw.auth.allow_service(key, found.name)
        return found

    async def about(self, service: Service, what: str | None, query: dict[str, str]) -> dict[str, Any]:
        if what in (None, "form"):
            snap = await self.observer.current()
            archs, now = frozenset(self.gw.refs.request.archs), _now()
            row = live.service_row(service, snap, archs, now)
            if what == "form":
                return {"service": row, **activity.chat_form(self.gw.refs.request, service.target.arch)}
            found = await self.blocking(activity.service_activity, self.reader, service.name)
            replicas = [live.service_row(w, snap, archs, now) for w in self.gw.table.workloads(service.name)]
            return {"service": row, "replicas": replicas, "activity": found}
        if what == "logs":
            tail = _tail(query.get("tail"))
            lines = await self.blocking(activity.logs_tail, self.gw, service.name, tail)
            return {"service": service.name, "tail": tail, "lines": lines}
        raise not_found(f"no endpoint for {service.name}: {what!r} (use logs or form)")

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread; a taoplan error (a platform refusing) is a 502 that says so."""
        try:
            return await asyncio.to_thread(fn, *args)
        except TaoplanError as exc:
            raise GatewayError(502, exc.message, type="upstream_error", code="platform_error") from None

    def close(self) -> None:
        self.reader.close()


def _now() -> float:
    import time

    return time.time()


def _name(text: str) -> str:
    if not NAME.fullmatch(text):
        raise not_found(f"no service named {text[:64]!r}", code="service_not_found")
    return text


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    try:
        parsed = parse_qs(raw, keep_blank_values=True, strict_parsing=False, max_num_fields=16)
    except ValueError:
        raise bad_request("too many query parameters", code="invalid_query") from None
    return {k: v[-1] for k, v in parsed.items()}


def _tail(text: str | None) -> int:
    if text is None:
        return DEFAULT_TAIL
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 0 < int(text) <= activity.MAX_TAIL:
        raise bad_request(
            f"tail: a whole number from 1 to {activity.MAX_TAIL}", code="invalid_tail", param="tail"
        )
    return int(text)
