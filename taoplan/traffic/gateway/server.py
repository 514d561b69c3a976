"""Running the gateway: uvicorn (uvloop, httptools) in the foreground, and the drain.

On SIGTERM or Ctrl+C: stop accepting, let in-flight requests finish (up to ``DRAIN_SECONDS``),
stop the watchers, remove this gateway's report for rollouts (``reports``), close the upstream
client, flush and close the request log, exit 0. A second
Ctrl+C stops at once. The services file and the state are read before listening: a broken file
or an unreachable database is a one-line error and nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from taoplan.errors import TaoplanError

if TYPE_CHECKING:
    from taoplan.traffic.gateway.core import Gateway

DRAIN_SECONDS = 30


def build(file: Path, state_dir: str | None, listen: str | None) -> Gateway:
    """Everything but the event loop: settings (``listen`` overrides the file), store, table, auth."""
    from taoplan.engine.workspace import Workspace
    from taoplan.spec.gateway_settings import GatewaySettings
    from taoplan.traffic.gateway.auth import Auth
    from taoplan.traffic.gateway.core import Gateway
    from taoplan.traffic.gateway.metrics import Metrics
    from taoplan.traffic.gateway.table import Table
    from taoplan.traffic.log import Redactor, open_store, resolve_caller

    ws = Workspace.open(file, state_dir)
    settings = ws.config.gateway
    if listen is not None:
        try:
            settings = GatewaySettings.model_validate({**settings.model_dump(), "listen": listen})
        except ValueError as exc:
            first = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            raise TaoplanError(f"--listen {listen}: {first.removeprefix('Value error, ')}") from None
    ws.store.ensure_dir()
    store = open_store(ws.store.dir, settings, pricing=ws.config.pricing)
    keys = store.keys if settings.auth == "keys" else None
    auth = Auth(settings.auth, keys, resolve_caller(None))
    table = Table(ws.refs.request.archs)
    redactor = Redactor.from_environ(ws.refs)
    return Gateway(settings, ws.refs, table, auth, Metrics(), store, redactor, file, state_dir)


def _server(config: object) -> Any:
    """uvicorn's Server, without re-raising the signal after a graceful stop (the exit is 0)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    return Server(config)  # type: ignore[arg-type]


async def serve(gw: Gateway, announce: bool = True) -> None:
    import uvicorn

    from taoplan.traffic.gateway.app import App
    from taoplan.traffic.gateway.reports import Reporter
    from taoplan.traffic.gateway.upstream import make_session
    from taoplan.traffic.gateway.watcher import Watcher, warn

    sock = _bind(gw.settings.host, gw.settings.port, gw.settings.listen)
    gw.session = make_session()
    # probes keep their own warm connection per service: a probe never waits for a new connection
    # (through a Kubernetes port-forward, a pod lookup and a websocket) while requests hold the pool's
    probes = make_session()
    gw.watcher = Watcher(gw.table, gw.file, gw.state_dir, gw.refs.request.readiness, gw.metrics, probes)
    follower: asyncio.Task[None] | None = None
    reporter: Reporter | None = None
    try:
        await gw.watcher.start()
        assert gw.watcher.workspace is not None
        # what this gateway routes and has in flight, for rollouts (kept up to date until it stops)
        reporter = Reporter(gw.table, gw.watcher.workspace.store.dir, warn)
        await reporter.tick()
        reporter.start()
        gc.collect()
        gc.freeze()  # the start-up heap (modules, settings, rules) is never scanned again: shorter GC pauses
        follower = asyncio.ensure_future(gw.watcher.run())
        config = uvicorn.Config(
            App(gw),
            host=gw.settings.host,
            port=gw.settings.port,
            loop="none",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=DRAIN_SECONDS,
            timeout_keep_alive=30,
            backlog=2048,
            h11_max_incomplete_event_size=64 * 1024,
        )
        server = _server(config)
        if announce:
            names = ", ".join(gw.table.names()) or "none yet"
            print(
                f"taoplan gateway: listening on http://{gw.settings.listen} (auth: {gw.settings.auth}); "
                f"services: {names}; dashboard: http://{gw.settings.listen}/. Ctrl+C or SIGTERM stops it.",
                file=sys.stderr,
                flush=True,
            )
        await server.serve(sockets=[sock])
    finally:
        gw.draining = True
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower
        await gw.watcher.stop()
        if reporter is not None:
            await reporter.stop()
        for session in (gw.session, probes):
            with contextlib.suppress(Exception):
                await session.close()


def _bind(host: str, port: int, listen: str) -> socket.socket:
    """The listening socket, bound before anything else starts: a port in use is a one-line error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise TaoplanError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise TaoplanError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    return sock


def run(file: Path, state_dir: str | None, listen: str | None) -> int:
    """`taoplan gateway`: serve until a signal; 0 after a clean drain."""
    gw = build(file, state_dir, listen)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        uvloop = None  # type: ignore[assignment]
    try:
        if uvloop is not None:
            uvloop.run(serve(gw))
        else:
            asyncio.run(serve(gw))
    finally:
        gw.store.close()
    print("taoplan gateway: stopped; the request log is flushed", file=sys.stderr, flush=True)
    return 0
