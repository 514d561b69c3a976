"""One Lepton deployment of the double: a real Docker container, its endpoint proxy and its observed state."""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets as pysecrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker
import docker.errors

from tests.lepton_double.model import (
    ERROR,
    NOT_READY,
    READY,
    STARTING,
    STOPPED,
    NodeGroup,
    iso_now,
    now_ms,
    shape_gpus,
)

LABEL = "taoplan-lepton-double"
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class Deployment:
    """Everything the double knows about one deployment."""

    def __init__(self, name: str, body: dict[str, Any], group: NodeGroup, shape: dict[str, Any], ws: str):
        self.name, self.ws = name, ws
        self.metadata = dict(body.get("metadata") or {})
        self.metadata.update(id=name, name=name, created_at=now_ms(), version=1)
        self.spec: dict[str, Any] = body.get("spec") or {}
        self.group, self.shape = group, shape
        self.container: Any = None  # docker Container while one runs
        self.replica_id = f"{name}-{pysecrets.token_hex(3)}"
        self.host_port: int | None = None
        self.ever_ready = False
        self.pending_reason: str | None = None  # NoCapacity / ConfigError before a container exists
        self.pending_message = ""
        self.terminations: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.started_at = 0
        self.proxy: EndpointProxy | None = None
        self.last_probe: tuple[int, str] = (0, "not probed")
        if self.spec.get("api_tokens") is None and not self.spec.get("allow_unauthenticated_access"):
            # enable_secure_endpoint_defaults: the server generates a token and returns it in the spec.
            self.spec["api_tokens"] = [{"value": pysecrets.token_urlsafe(24)}]

    @property
    def gpus(self) -> int:
        return shape_gpus(self.shape)

    @property
    def wanted(self) -> int:
        rr = self.spec.get("resource_requirement") or {}
        return int(rr.get("min_replicas", 1) if rr.get("min_replicas") is not None else 1)

    def event(self, type_: str, reason: str) -> None:
        for ev in self.events:
            if ev["reason"] == reason and ev["type"] == type_:
                ev["count"] += 1
                ev["last_observed_time"] = iso_now()
                return
        self.events.append(
            {
                "type": type_,
                "reason": reason,
                "count": 1,
                "last_observed_time": iso_now(),
                "regarding": {"kind": "LeptonDeployment", "name": self.name},
            }
        )

    # --- container lifecycle -------------------------------------------------------------------
    def run_container(self, dk: docker.DockerClient, instance: str, env: dict[str, str]) -> None:
        container = self.spec.get("container") or {}
        image = container["image"]
        try:
            dk.images.get(image)
        except docker.errors.ImageNotFound:
            self.pending_reason, self.pending_message = "ConfigError", f"failed to pull image {image}"
            self.event("Warning", "ErrImagePull")
            return
        ports = container.get("ports") or [{"container_port": 8080}]
        cport = int(ports[0]["container_port"])
        shm = (self.spec.get("resource_requirement") or {}).get("shared_memory_size")
        self.container = dk.containers.run(
            image,
            command=container.get("command"),
            detach=True,
            init=True,
            name=f"lepton-double-{instance}-{self.name}",
            environment=env,
            labels={LABEL: instance, f"{LABEL}.deployment": self.name},
            ports={f"{cport}/tcp": ("127.0.0.1", None)},
            shm_size=f"{int(shm)}m" if shm else None,
        )
        self.container.reload()
        bound = (self.container.ports or {}).get(f"{cport}/tcp")  # empty when it exited at once
        self.host_port = int(bound[0]["HostPort"]) if bound else None
        self.pending_reason, self.ever_ready, self.started_at = None, False, now_ms()
        self.event("Normal", "Started")

    def remove_container(self) -> None:
        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.container.remove(force=True)
            self.container, self.host_port = None, None
            self.event("Normal", "Killing")

    # --- observed state ------------------------------------------------------------------------
    def probe(self) -> tuple[int, str]:
        """GET /api/v1/health/readiness on the container: (status, reason); 0 when it does not answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.host_port, timeout=2)
        try:
            conn.request("GET", "/api/v1/health/readiness")
            resp = conn.getresponse()
            raw = resp.read()
            try:
                reason = str(json.loads(raw).get("reason", "")) if raw else ""
            except (ValueError, AttributeError):
                reason = ""
            return resp.status, reason
        except OSError as exc:
            return 0, f"connection failed: {type(exc).__name__}"
        finally:
            conn.close()

    def refresh(self) -> None:
        """Follow the container: exited -> Error, readiness 200 -> Ready."""
        if self.container is None:
            return
        try:
            self.container.reload()
        except docker.errors.NotFound:
            self.container = None
            self.terminations.append(self._termination(-1, "container removed outside the double"))
            return
        if self.container.status in ("exited", "dead"):
            if self.terminations:
                return
            state = self.container.attrs["State"]
            code = int(state.get("ExitCode", -1))
            tail = self.container.logs(tail=1).decode(errors="replace").strip()
            self.terminations.append(self._termination(code, tail))
            self.event("Warning", "BackOff")
            return
        self.last_probe = self.probe() if self.host_port else (0, "no port")
        if self.last_probe[0] == 200:
            self.ever_ready = True

    def _termination(self, code: int, message: str) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "finished_at": now_ms(),
            "exit_code": code,
            "reason": "Error" if code else "Completed",
            "message": message,
        }

    def state(self) -> tuple[str, str]:
        """(status.state, status.phase) as a legacy server reports them."""
        if self.wanted == 0:
            return NOT_READY, STOPPED
        if self.container is None:
            if self.terminations:
                return ERROR, ERROR
            return (NOT_READY, NOT_READY) if self.pending_reason == "ConfigError" else (STARTING, STARTING)
        if self.container.status in ("exited", "dead"):
            return ERROR, ERROR
        if self.last_probe[0] == 200:
            return READY, READY
        if self.ever_ready or self.last_probe[1] in ("model_load_failed", "initialization_failed"):
            return NOT_READY, NOT_READY
        return STARTING, STARTING

    def readiness(self) -> dict[str, list[dict[str, Any]]]:
        """GET .../readiness: types/readiness.py ReadinessIssue {replica_id: [ReplicaReadinessIssue]}."""
        if self.wanted == 0:
            return {}
        state, _ = self.state()
        if self.pending_reason:
            reason, msg = self.pending_reason, self.pending_message
        elif state == READY:
            reason, msg = "Ready", "replica is ready"
        elif state == ERROR:
            last = self.terminations[-1] if self.terminations else {"exit_code": -1, "message": ""}
            reason, msg = "SystemError", f"container exited with code {last['exit_code']}: {last['message']}"
        else:
            code, why = self.last_probe
            reason, msg = "InProgress", f"readiness probe: {code or 'no answer'} {why}".strip()
        return {self.replica_id: [{"reason": reason, "message": msg, "creationTimestamp": iso_now()}]}

    def replicas(self) -> list[dict[str, Any]]:
        """GET .../replicas: types/replica.py Replica{metadata, id, status}."""
        if self.wanted == 0:
            return []
        node = {"name": f"{self.group.name}-node-0", "id": f"{self.group.id}-node-0"}
        status = {"node": node} if self.container is not None else {}
        return [
            {
                "metadata": {"id": self.replica_id, "name": self.replica_id},
                "id": self.replica_id,
                "status": status,
            }
        ]

    def to_json(self) -> dict[str, Any]:
        state, phase = self.state()
        cport = ((self.spec.get("container") or {}).get("ports") or [{"container_port": 8080}])[0]
        return {
            "metadata": self.metadata,
            "spec": self.spec,
            "status": {
                "state": state,
                "phase": phase,
                "endpoint": {
                    "internal_endpoint": f"http://{self.name}.{self.ws}.svc.local:{cport['container_port']}",
                    "external_endpoint": self.proxy.url if self.proxy else "",
                },
            },
        }


class EndpointProxy:
    """external_endpoint: a loopback HTTP proxy that wants `Authorization: Bearer <api token>`."""

    def __init__(self, dep: Deployment, tokens: callable):  # type: ignore[valid-type]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                outer.forward(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        self.dep, self.tokens = dep, tokens
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        allowed = self.tokens()
        got = h.headers.get("Authorization", "")
        if allowed and (not got.startswith("Bearer ") or got[len("Bearer ") :] not in allowed):
            return _send(h, 401, {"code": "Unauthorized", "message": "invalid or missing endpoint token"})
        port = self.dep.host_port
        if port is None:
            return _send(h, 503, {"code": "NoReadyReplica", "message": "no replica is running"})
        headers = {
            k: v for k, v in h.headers.items() if k.lower() not in HOP and k.lower() != "authorization"
        }
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            conn.request(h.command, h.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            return _send(
                h, 502, {"code": "BadGateway", "message": f"replica did not answer: {type(exc).__name__}"}
            )
        finally:
            conn.close()
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _send(h: BaseHTTPRequestHandler, status: int, obj: Any) -> None:
    raw = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(raw)))
    h.end_headers()
    h.wfile.write(raw)
