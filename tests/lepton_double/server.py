"""The Lepton control-plane double: the legacy /deployments route family under /api/v2/workspaces/<ws>."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import docker
import docker.errors

from tests.lepton_double.model import (
    ApiError,
    NodeGroup,
    default_shapes,
    merge,
    validate_name,
    validate_spec,
    workspace_info,
)
from tests.lepton_double.runtime import LABEL, Deployment, EndpointProxy

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p + r"$"), fn)
    for m, p, fn in [
        ("GET", r"/workspace", "get_workspace"),
        ("GET", r"/deployments", "list_deployments"),
        ("POST", r"/deployments", "create_deployment"),
        ("GET", r"/deployments/(?P<name>[^/]+)", "get_deployment"),
        ("PATCH", r"/deployments/(?P<name>[^/]+)", "patch_deployment"),
        ("DELETE", r"/deployments/(?P<name>[^/]+)", "delete_deployment"),
        ("PUT", r"/deployments/(?P<name>[^/]+)/restart", "restart_deployment"),
        ("GET", r"/deployments/(?P<name>[^/]+)/(?P<what>readiness|termination|replicas|events)", "sub"),
        ("GET", r"/deployments/(?P<name>[^/]+)/replicas/(?P<rid>[^/]+)/log", "replica_log"),
        ("GET", r"/usersecrets", "list_secrets"),
        ("POST", r"/usersecrets", "create_secrets"),
        ("DELETE", r"/usersecrets/(?P<name>[^/]+)", "delete_secret"),
        ("GET", r"/shapes", "list_shapes"),
        ("GET", r"/dedicated-node-groups", "list_node_groups"),
        ("GET", r"/dedicated-node-groups/(?P<ng>[^/]+)/nodes", "list_nodes"),
        ("GET", r"/imagepullsecrets", "list_pull_secrets"),
    ]
]


class Double:
    """A running double. `url` is what APIClient(ws, token, url=...) takes."""

    def __init__(
        self,
        workspace_id: str,
        token: str,
        docker_host: str | None = None,
        new_api: bool = False,
        image_pull_secrets: tuple[str, ...] = (),
    ):
        self.ws, self.token, self.new_api = workspace_id, token, new_api
        self.instance = uuid.uuid4().hex[:10]
        self.docker_host = docker_host
        self.dk = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
        self.lock = threading.RLock()
        self.secrets: dict[str, str] = {}
        self.pull_secrets: set[str] = set(image_pull_secrets)
        self.deployments: dict[str, Deployment] = {}
        ng = NodeGroup(id="ng-double-h200", name="double-h200", gpus=8)
        ng.shapes = default_shapes(ng.id)
        self.node_groups: dict[str, NodeGroup] = {ng.id: ng}
        self.requests: list[tuple[str, str]] = []  # (method, path) seen, for tests that count calls
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                double.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/api/v2/workspaces/{workspace_id}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # --- helpers for tests ---------------------------------------------------------------------
    @property
    def node_group_id(self) -> str:
        return next(iter(self.node_groups))

    def set_node_group_capacity(self, gpus: int, node_group: str | None = None) -> None:
        with self.lock:
            self.node_groups[node_group or self.node_group_id].gpus = gpus
            self._schedule()

    def hold_gpus(self, gpus: int, name: str = "other-team-llm", node_group: str | None = None) -> None:
        """Another workspace's deployment takes ``gpus`` of the node group (0: it goes away)."""
        with self.lock:
            self.node_groups[node_group or self.node_group_id].foreign = (name, gpus) if gpus else None
            self._schedule()

    def add_node_group(self, ng_id: str, name: str, gpus: int) -> None:
        with self.lock:
            ng = NodeGroup(id=ng_id, name=name, gpus=gpus)
            ng.shapes = default_shapes(ng_id)
            self.node_groups[ng_id] = ng

    def add_image_pull_secret(self, name: str) -> None:
        with self.lock:
            self.pull_secrets.add(name)

    def delete_deployment_out_of_band(self, name: str) -> None:
        """As if someone deleted it in the console: the record, proxy and container go."""
        with self.lock:
            self._drop(self.deployments.pop(name))
            self._schedule()

    def container_id(self, name: str) -> str | None:
        dep = self.deployments.get(name)
        return dep.container.id if dep and dep.container is not None else None

    def containers(self) -> list[Any]:
        return self.dk.containers.list(all=True, filters={"label": f"{LABEL}={self.instance}"})

    def stop(self) -> None:
        with self.lock:
            for dep in list(self.deployments.values()):
                self._drop(dep)
            self.deployments.clear()
        for c in self.containers():
            c.remove(force=True)
        self.server.shutdown()
        self.server.server_close()

    # --- scheduling ----------------------------------------------------------------------------
    def _running(self, ng: NodeGroup) -> list[Deployment]:
        return [d for d in self.deployments.values() if d.group is ng and d.container is not None]

    def _used(self, ng: NodeGroup) -> int:
        return sum(d.gpus for d in self._running(ng)) + (ng.foreign[1] if ng.foreign else 0)

    def _env(self, dep: Deployment) -> dict[str, str]:
        env = {"LEPTON_DEPLOYMENT_NAME": dep.name, "LEPTON_WORKSPACE_ID": self.ws}
        for item in dep.spec.get("envs") or []:
            ref = (item.get("value_from") or {}).get("secret_name_ref")
            env[item["name"]] = self.secrets[ref] if ref else str(item.get("value") or "")
        return env

    def _schedule(self) -> None:
        """Give pending deployments a container where their node group has GPUs free (oldest first)."""
        for dep in sorted(self.deployments.values(), key=lambda d: d.metadata["created_at"]):
            if dep.container is not None or dep.wanted == 0 or dep.terminations:
                continue
            missing = [s for s in dep.spec.get("image_pull_secrets") or [] if s not in self.pull_secrets]
            if missing:
                dep.pending_reason = "ConfigError"
                dep.pending_message = f"image pull secret {missing[0]!r} not found"
                continue
            if self._used(dep.group) + dep.gpus > dep.group.gpus:
                dep.pending_reason = "NoCapacity"
                dep.pending_message = (
                    f"node group {dep.group.name} has {dep.group.gpus - self._used(dep.group)} of "
                    f"{dep.group.gpus} GPUs free; shape {dep.shape['metadata']['name']} needs {dep.gpus}"
                )
                dep.event("Warning", "FailedScheduling")
                continue
            dep.run_container(self.dk, self.instance, self._env(dep))

    def _drop(self, dep: Deployment) -> None:
        dep.remove_container()
        if dep.proxy:
            dep.proxy.close()

    def _tokens(self, dep: Deployment) -> set[str]:
        out = set()
        for tok in dep.spec.get("api_tokens") or []:
            ref = (tok.get("value_from") or {}).get("token_name_ref")
            value = self.secrets.get(ref) if ref else tok.get("value")
            if value:
                out.add(value)
        return out

    def _get(self, name: str) -> Deployment:
        dep = self.deployments.get(name)
        if dep is None:
            raise ApiError(404, "DeploymentNotFound", f"deployment {name!r} not found")
        return dep

    def _observe(self, dep: Deployment) -> Deployment:
        dep.refresh()
        return dep

    # --- HTTP ----------------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        self.requests.append((h.command, parts.path))
        try:
            prefix = f"/api/v2/workspaces/{self.ws}"
            if not parts.path.startswith(prefix + "/"):
                raise ApiError(404, "WorkspaceNotFound", "workspace not found")
            if h.headers.get("Authorization", "") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized", "invalid workspace token")
            sub = parts.path[len(prefix) :]
            length = int(h.headers.get("Content-Length") or 0)
            raw = h.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise ApiError(400, "InvalidJSON", "request body is not JSON") from None
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            for method, pattern, fn in ROUTES:
                m = pattern.match(sub)
                if m and method == h.command:
                    if fn == "replica_log":
                        return self.replica_log(h, **m.groupdict())
                    with self.lock:
                        result = getattr(self, fn)(body=body, query=query, **m.groupdict())
                    return _reply(h, 200, result)
            raise ApiError(404, "NotFound", f"no route {h.command} {sub}")
        except ApiError as err:
            _reply(h, err.status, err.body())
        except Exception as exc:  # a bug of the double or Docker trouble: the API's 500 shape
            _reply(h, 500, {"code": "InternalError", "message": f"{type(exc).__name__}: {exc}"})

    def get_workspace(self, **_: Any) -> dict[str, Any]:
        return workspace_info(self.ws, self.new_api, len(self.deployments), len(self.secrets))

    def list_deployments(self, **_: Any) -> list[dict[str, Any]]:
        return [self._observe(d).to_json() for d in self.deployments.values()]

    def create_deployment(self, body: Any, **_: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidParameterValue", "body must be a LeptonDeployment object")
        name = validate_name(body.get("metadata") or {})
        if name in self.deployments:
            raise ApiError(409, "AlreadyExists", f"deployment {name!r} already exists")
        spec = copy.deepcopy(body.get("spec") or {})
        group, shape = validate_spec(spec, self.node_groups, self.secrets, create=True)
        dep = Deployment(name, {**body, "spec": spec}, group, shape, self.ws)
        dep.proxy = EndpointProxy(dep, lambda: self._tokens(dep))
        self.deployments[name] = dep
        self._schedule()
        return dep.to_json()

    def get_deployment(self, name: str, **_: Any) -> dict[str, Any]:
        return self._observe(self._get(name)).to_json()

    def patch_deployment(self, name: str, body: Any, **_: Any) -> dict[str, Any]:
        dep = self._get(name)
        spec = merge(dep.spec, (body or {}).get("spec") or {})
        group, shape = validate_spec(spec, self.node_groups, self.secrets, create=False)
        labels = ((body or {}).get("metadata") or {}).get("labels")
        if labels is not None:
            dep.metadata["labels"] = labels
        if spec != dep.spec:
            dep.remove_container()
            dep.spec, dep.group, dep.shape = spec, group, shape
            dep.terminations, dep.ever_ready = [], False
            dep.metadata["version"] += 1
            self._schedule()
        return dep.to_json()

    def delete_deployment(self, name: str, **_: Any) -> dict[str, Any]:
        self._drop(self.deployments.pop(self._get(name).name))
        self._schedule()
        return {}

    def restart_deployment(self, name: str, **_: Any) -> dict[str, Any]:
        dep = self._get(name)
        dep.remove_container()
        dep.terminations, dep.ever_ready = [], False
        self._schedule()
        return dep.to_json()

    def sub(self, name: str, what: str, **_: Any) -> Any:
        dep = self._observe(self._get(name))
        if what == "readiness":
            return dep.readiness()
        if what == "termination":
            return {dep.replica_id: dep.terminations} if dep.terminations else {}
        if what == "replicas":
            return dep.replicas()
        return dep.events

    def replica_log(self, h: BaseHTTPRequestHandler, name: str, rid: str) -> None:
        """Streams `docker logs --follow` of the replica's container until it exits or the client goes."""
        with self.lock:
            dep = self._get(name)
            if rid != dep.replica_id:
                raise ApiError(404, "ReplicaNotFound", f"replica {rid!r} not found")
            container = dep.container
        # Chunked, as the SDK needs: get_log reads iter_content(chunk_size=None), which on a body
        # without chunked framing blocks until the connection closes (requests/urllib3 read(amt=None)).
        h.protocol_version = "HTTP/1.1"
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", "text/plain; charset=utf-8")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        if container is None:
            h.wfile.write(b"0\r\n\r\n")
            return
        env = {**os.environ, **({"DOCKER_HOST": self.docker_host} if self.docker_host else {})}
        proc = subprocess.Popen(
            ["docker", "logs", "--follow", container.id],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        try:
            while chunk := os.read(proc.stdout.fileno(), 65536):  # type: ignore[union-attr]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client went away
        finally:
            proc.kill()
            proc.wait()

    def list_secrets(self, **_: Any) -> list[dict[str, Any]]:
        return [{"name": n} for n in sorted(self.secrets)]  # value is write-only (types/secret.py)

    def create_secrets(self, body: Any, **_: Any) -> dict[str, Any]:
        if not isinstance(body, list) or not all(isinstance(s, dict) and s.get("name") for s in body):
            raise ApiError(400, "InvalidParameterValue", "body must be a list of {name, value}")
        for item in body:
            if not isinstance(item.get("value"), str):
                raise ApiError(400, "InvalidParameterValue", f"secret {item['name']!r} has no value")
        for item in body:
            self.secrets[item["name"]] = item["value"]
        return {}

    def delete_secret(self, name: str, **_: Any) -> dict[str, Any]:
        if self.secrets.pop(name, None) is None:
            raise ApiError(404, "SecretNotFound", f"secret {name!r} not found")
        return {}

    def list_shapes(self, query: dict[str, str], **_: Any) -> list[dict[str, Any]]:
        groups = query["node_groups"].split(",") if query.get("node_groups") else list(self.node_groups)
        purpose = query.get("purpose")
        out = []
        for gid in groups:
            for shape in self.node_groups[gid].shapes if gid in self.node_groups else []:
                if purpose is None or purpose in shape["spec"].get("listable_in", []):
                    out.append(shape)
        return out

    def list_node_groups(self, **_: Any) -> list[dict[str, Any]]:
        return [ng.to_json() for ng in self.node_groups.values()]

    def list_nodes(self, ng: str, **_: Any) -> list[dict[str, Any]]:
        """One node per node group holding all its GPUs (api/v2/types/dedicated_node_group.py Node):
        the allocation and the workloads are the deployments that run a container there."""
        if ng not in self.node_groups:
            raise ApiError(404, "ObjectNotFound", f"dedicated node group {ng} not found")
        group = self.node_groups[ng]
        gpu = {
            "product": group.gpu_product,
            "allocated": float(self._used(group)),
            "total": float(group.gpus),
        }
        loads = [(d.name, d.replica_id, self.ws, d.gpus) for d in self._running(group)]
        if group.foreign:
            name, gpus = group.foreign
            loads.append((name, f"{name}-0", "other-workspace", gpus))
        workloads = [
            {"type": "deployment", "name": n, "id": n, "replica_id": r, "workspace": w, "gpu_count": float(g)}
            for n, r, w, g in loads
        ]
        return [
            {
                "metadata": {"id": f"{group.id}-node-0", "name": f"{group.name}-node-0"},
                "spec": {"dedicated_node_group": group.id, "resource": {"gpu": gpu}, "unschedulable": False},
                "status": {"status": ["Ready"], "workloads": workloads},
            }
        ]

    def list_pull_secrets(self, **_: Any) -> list[dict[str, Any]]:
        # Not in the SDK (it has no pull-secret API); shape chosen by the double. See docs/lepton-double.md.
        return [{"metadata": {"name": n}} for n in sorted(self.pull_secrets)]


def _reply(h: BaseHTTPRequestHandler, status: int, obj: Any) -> None:
    raw = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(raw)))
    h.end_headers()
    h.wfile.write(raw)


def start_double(
    docker_host: str | None = None,
    workspace_id: str = "wsdouble",
    token: str | None = None,
    new_api: bool = False,
    image_pull_secrets: tuple[str, ...] = (),
) -> Double:
    """Start a double on a free loopback port; call .stop() to remove its containers and close it."""
    return Double(workspace_id, token or uuid.uuid4().hex, docker_host, new_api, image_pull_secrets)
