"""The port-forward process of `access: port-forward`, and how taoplan knows one of its own.

Why a module of its own: the forwarder runs in the background, outliving the command that opened it,
as ``python -m taoplan.platforms.kubernetes.forward port-forward --spec 127.0.0.1:LOCAL:NS/JOB:PORT``.
State records its PID; the PID is trusted only when /proc/PID/cmdline names this module with exactly
that spec (PIDs get reused), so the module path in FORWARD_MODULE must be this file's.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from taoplan.platforms.common import tunnel

from .api import API_TIMEOUT, new_api_client, short
from .names import selector_for, selector_text
from .pods import newest, pod_is_ready

#: This module, as the forwarder's command line names it (``__name__`` is "__main__" when it runs).
FORWARD_MODULE = "taoplan.platforms.kubernetes.forward"


def forward_spec(local_port: int, namespace: str, job_id: str, remote_port: int) -> str:
    """What a forwarder's command line carries, and what state's record is checked against."""
    return f"127.0.0.1:{local_port}:{namespace}/{job_id}:{remote_port}"


def parse_forward_spec(spec: str) -> tuple[int, str, str, int]:
    match = re.fullmatch(r"127\.0\.0\.1:(\d+):([a-z0-9-]+)/([0-9a-f-]+):(\d+)", spec)
    if not match:
        raise ValueError(f"bad forward spec {spec!r}")
    return int(match.group(1)), match.group(2), match.group(3), int(match.group(4))


def _is_forwarder(argv: list[str]) -> bool:
    return FORWARD_MODULE in argv and "port-forward" in argv


def forwarder_is_ours(pid: Any, spec: str) -> bool:
    """True when ``pid`` is a live forwarder of this module for exactly ``spec`` (PIDs get reused)."""
    return tunnel.is_ours(pid, spec, flag="--spec", marker=_is_forwarder)


def close_forwarder(pid: Any, spec: str, wait: float = 5.0) -> bool:
    """Stop the forwarder ``pid`` if it is still ours. True if it was running."""
    return tunnel.close(pid, spec, wait=wait, flag="--spec", marker=_is_forwarder)


def forwarder_argv(spec: str, project: str, kubeconfig: str | None, context: str | None) -> list[str]:
    """The command line that starts a forwarder for ``spec`` (what ``_is_forwarder`` recognises)."""
    argv = [sys.executable, "-m", FORWARD_MODULE, "port-forward", "--spec", spec, "--project", project]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if context:
        argv += ["--context", context]
    return argv


def serve_port_forward(spec: str, project: str, kubeconfig: str | None, context: str | None) -> None:
    """Listen on 127.0.0.1:LOCAL; forward each connection to a pod of the job through the API server:
    a Ready pod first, else one that runs (whose readiness answer then says why it is not Ready).

    The pod is chosen per connection, so a pod replaced by its Deployment (deleted out of band, moved
    to another node) is followed without reopening anything. Exits once the job's Deployment is gone.
    """
    local_port, namespace, job_id, remote_port = parse_forward_spec(spec)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", local_port))
    listener.listen(64)

    from kubernetes import client
    from kubernetes.stream import portforward

    api_client = new_api_client(kubeconfig, context)
    core = client.CoreV1Api(api_client)
    # kubernetes.stream swaps ApiClient.call_api while it opens a websocket, which is not thread-safe:
    # port-forwards get a client of their own and open one at a time; listing uses the other one.
    forward_core = client.CoreV1Api(new_api_client(kubeconfig, context))
    forward_lock = threading.Lock()
    selector = selector_text(selector_for(project, job_id))

    def log(message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        sys.stderr.write(f"{stamp} {message}\n")
        sys.stderr.flush()

    def target_pod() -> str | None:
        """A Ready pod of the job; else one whose container runs (its readiness answer says why not)."""
        pods = api_client.sanitize_for_serialization(
            core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=API_TIMEOUT)
        )
        items = [p for p in pods.get("items") or [] if not (p.get("metadata") or {}).get("deletionTimestamp")]
        running = [p for p in items if (p.get("status") or {}).get("phase") == "Running"]
        best = newest([p for p in running if pod_is_ready(p)]) or newest(running)
        return best["metadata"]["name"] if best else None

    def pump(conn: socket.socket) -> None:
        remote: Any = None
        try:
            pod = target_pod()
            if pod is None:
                return  # no pod runs: the client sees the connection closed
            with forward_lock:
                forward = portforward(
                    forward_core.connect_get_namespaced_pod_portforward,
                    pod,
                    namespace,
                    ports=str(remote_port),
                )
            remote = forward.socket(remote_port)
            remote.setblocking(True)
            import select

            sockets = [conn, remote]
            while True:
                readable, _, _ = select.select(sockets, [], [], 60.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (remote if sock is conn else conn).sendall(data)
        except Exception as exc:  # noqa: BLE001 - one failed connection must not end the forwarder
            log(f"connection failed: {type(exc).__name__}: {short(exc)}")
        finally:
            for sock in (conn, remote):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def watchdog() -> None:
        from kubernetes.client import AppsV1Api

        apps = AppsV1Api(api_client)
        missing = 0
        while True:
            time.sleep(30)
            try:
                found = apps.list_namespaced_deployment(
                    namespace, label_selector=selector, _request_timeout=API_TIMEOUT
                )
            except Exception:  # noqa: BLE001 - an unreachable API is not "gone"
                missing = 0
                continue
            missing = 0 if found.items else missing + 1
            if missing >= 2:
                log(f"job {job_id}'s Deployment is gone: exiting")
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    log(f"forwarding 127.0.0.1:{local_port} -> {namespace}/{selector} port {remote_port}")
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=pump, args=(conn,), daemon=True).start()


def main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m {FORWARD_MODULE}")
    sub = parser.add_subparsers(dest="command", required=True)
    fwd = sub.add_parser("port-forward", help="the background port-forward of one job (started by taoplan)")
    fwd.add_argument("--spec", required=True)
    fwd.add_argument("--project", required=True)
    fwd.add_argument("--kubeconfig", default=None)
    fwd.add_argument("--context", default=None)
    args = parser.parse_args(argv)
    serve_port_forward(args.spec, args.project, args.kubeconfig, args.context)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
