"""Platform `kubernetes`: one Deployment, Service and (if needed) Secret per service, by server-side apply.

The objects are rendered from templates/kubernetes/*.yaml.j2 (`taoplan render` shows them) and apply
parses exactly those files and sends them with server-side apply, field manager ``taoplan``. The one
thing added at apply time is each secret value, read from the environment into the Secret object in
memory. Every object is named after its job (``tao-<service>-<job8>``) and labelled with
``taoplan.io/{project,service,job-id,lineage}``, so observe() lists this project's workloads by label
and destroy deletes exactly what it owns. taoplan reaches a pod through ``access``: a port-forward it
runs in the background (a small forwarder process of this module, whose PID state records, like the
Slurm tunnel), or the Service's own address.

The ``kubernetes`` client is imported inside methods only: `taoplan --help` must stay fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from taoplan import labels
from taoplan.errors import PlatformError
from taoplan.platforms.base import (
    Artifact,
    Check,
    Deployment,
    Endpoint,
    Observation,
    Placement,
    PlatformContext,
    Started,
)
from taoplan.platforms.common import ports, tunnel
from taoplan.platforms.common.templates import render_template
from taoplan.spec.platform_settings import LABEL_VALUE, KubernetesConfig
from taoplan.store.state import ServiceRecord

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec

# ------------------------------------------------------------------------------------------ names

MANAGED_BY = labels.K8S_MANAGED_BY
PROJECT = labels.K8S_PROJECT
SERVICE = labels.K8S_SERVICE
JOB_ID = labels.K8S_JOB_ID
LINEAGE = labels.K8S_LINEAGE
SPEC_HASH = labels.K8S_SPEC_HASH  # an annotation
ARCH = labels.K8S_ARCH  # an annotation
#: The core's labels (labels.py) under their Kubernetes names.
LABEL_NAMES = {
    labels.PROJECT: PROJECT,
    labels.SERVICE: SERVICE,
    labels.JOB_ID: JOB_ID,
    labels.LINEAGE: LINEAGE,
    labels.TAO_JOB: labels.TAO_JOB,
}
FIELD_MANAGER = "taoplan"
CONTAINER = "tao"
REDACTED = "<redacted: from the environment at apply>"
#: startupProbe: every 5 s, up to 2 h of model loading before the kubelet restarts the container.
STARTUP_FAILURES = 1440
#: How long stop() waits for the pods of a deleted Deployment to go.
STOP_WAIT_SECONDS = 120.0
#: Fatal pod conditions (Unschedulable, ImagePullBackOff, CrashLoopBackOff...) are reported with this
#: Observation.status: the core's readiness loop stops waiting on it and shows the detail.
FATAL_STATUS = "failed"
#: Container waiting reasons that will not clear by themselves. ErrImagePull is left out: it is the
#: first, possibly transient, failure; ImagePullBackOff follows when it repeats.
FATAL_WAITING = frozenset(
    {"ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError"}
)
FORWARD_MODULE = "taoplan.platforms.kubernetes.platform"
API_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds for one API call

# ------------------------------------------------------------------------------------------ pure helpers


def object_name(service: str, job_id: str) -> str:
    """tao-<service>-<first 8 of the job id>: a DNS-1035 label of at most 53 characters."""
    return f"tao-{service}-{job_id.replace('-', '')[:8]}"


def secret_name(service: str, job_id: str) -> str:
    return object_name(service, job_id) + "-env"


def k8s_labels(deployment: Deployment) -> dict[str, str]:
    out = {MANAGED_BY: "taoplan"}
    for key, value in deployment.labels.items():
        name = LABEL_NAMES.get(key)
        if name is None:
            continue
        if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            raise PlatformError(f"kubernetes: {key}={value!r} is not a valid Kubernetes label value")
        out[name] = value
    return out


def selector_for(project: str, job_id: str) -> dict[str, str]:
    return {MANAGED_BY: "taoplan", PROJECT: project, JOB_ID: job_id}


def selector_text(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def parse_quantity(text: Any) -> int:
    """An integer resource quantity (GPU counts: "4", 4, "4000m"); 0 when unreadable."""
    value = str(text).strip()
    try:
        if value.endswith("m"):
            return int(value[:-1]) // 1000
        return int(float(value))
    except ValueError:
        return 0


def pod_gpus(pod: Mapping[str, Any], resource: str) -> int:
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        res = container.get("resources") or {}
        amount = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource))
        total += parse_quantity(amount) if amount is not None else 0
    return total


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return {}


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    return not meta.get("deletionTimestamp") and _condition(pod, "Ready").get("status") == "True"


@dataclass(frozen=True)
class PodState:
    """What one pod says, in the core's words (running | starting | pending | exited)."""

    status: str
    detail: str
    fatal: bool = False
    exit_code: int | None = None


def pod_state(pod: Mapping[str, Any]) -> PodState:
    """Classify a pod: fatal conditions (Unschedulable, image pull back-off, a bad secret ref) are marked."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = meta.get("name", "?")
    node = (pod.get("spec") or {}).get("nodeName")
    phase = status.get("phase", "Pending")
    if meta.get("deletionTimestamp"):
        return PodState("pending", f"pod {name} is terminating")
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return PodState("pending", f"Unschedulable: {scheduled.get('message', '').strip()}", fatal=True)
    if phase in ("Succeeded", "Failed"):
        reason = status.get("reason") or phase
        message = status.get("message") or ""
        return PodState("exited", f"pod {name} {reason}" + (f": {message}" if message else ""))
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if not waiting:
            continue
        reason, message = waiting.get("reason", ""), (waiting.get("message") or "").strip()
        if reason == "CrashLoopBackOff":
            last = (cs.get("lastState") or {}).get("terminated") or {}
            code = last.get("exitCode")
            why = f", {last['reason']}" if last.get("reason") else ""
            return PodState(
                "exited",
                f"CrashLoopBackOff: restarted {cs.get('restartCount', 0)} time(s), last exit code {code}{why}",
                fatal=True,
                exit_code=code if isinstance(code, int) else None,
            )
        if reason in FATAL_WAITING:
            return PodState("pending", f"{reason}: {message}" if message else reason, fatal=True)
        if reason:
            return PodState("pending", f"{reason}: {message}" if message else reason)
    if phase == "Pending":
        return PodState(
            "pending", f"pod {name} Pending" + (f" on {node}" if node else " (not scheduled yet)")
        )
    if _condition(pod, "Ready").get("status") == "True":
        return PodState("running", f"Ready on {node}")
    started = all(cs.get("started") for cs in status.get("containerStatuses") or [{}])
    return PodState("starting", f"Running on {node}, not Ready" + ("" if started else " (startup probe)"))


def newest(items: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    live = [i for i in items if not (i.get("metadata") or {}).get("deletionTimestamp")] or list(items)
    if not live:
        return None
    return max(live, key=lambda i: (i.get("metadata") or {}).get("creationTimestamp") or "")


@dataclass
class Capacity:
    """What the eligible nodes can still allocate of the GPU resource, from one observe()."""

    resource: str
    allocatable: dict[str, int] = field(default_factory=dict)  # per eligible node
    free: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def largest(self) -> tuple[str, int]:
        if not self.free:
            return "", 0
        node = max(self.free, key=lambda n: (self.free[n], n))
        return node, self.free[node]

    def fits(self, gpus: int) -> bool:
        return self.largest[1] >= gpus

    def describe(self, gpus: int) -> str:
        node, most = self.largest
        total = sum(self.free.values())
        where = f"{len(self.free)} eligible node(s)"
        note = f"; {self.note}" if self.note else ""
        if not self.free:
            return f"{gpus} {self.resource}: does NOT fit: no eligible node{note}"
        if most >= gpus:
            return f"{gpus} {self.resource}: fits ({most} free on {node}; {total} free on {where}{note})"
        return (
            f"{gpus} {self.resource}: does NOT fit what the nodes can still allocate (at most {most} free "
            f"on one node, {total} on {where}{note}): the pod would be Unschedulable"
        )


def eligible(node: Mapping[str, Any], cfg: KubernetesConfig) -> bool:
    """Could a pod with this platform's node selector and tolerations be scheduled on ``node``?"""
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    if spec.get("unschedulable") or _condition(node, "Ready").get("status") != "True":
        return False
    node_labels = meta.get("labels") or {}
    if any(node_labels.get(k) != v for k, v in cfg.node_selector.items()):
        return False
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
            t.tolerates(taint) for t in cfg.tolerations
        ):
            return False
    return True


def capacity(
    nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], cfg: KubernetesConfig
) -> Capacity:
    out = Capacity(cfg.gpu_resource)
    for node in nodes:
        if eligible(node, cfg):
            name = node["metadata"]["name"]
            out.allocatable[name] = parse_quantity(
                ((node.get("status") or {}).get("allocatable") or {}).get(cfg.gpu_resource, 0)
            )
    used: dict[str, int] = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name in out.allocatable and (pod.get("status") or {}).get("phase") not in (
            "Succeeded",
            "Failed",
        ):
            used[node_name] = used.get(node_name, 0) + pod_gpus(pod, cfg.gpu_resource)
    out.free = {n: max(0, a - used.get(n, 0)) for n, a in out.allocatable.items()}
    return out


def api_message(status: int, data: Any) -> str:
    if isinstance(data, dict) and data.get("message"):
        return f"{data['message']} (HTTP {status})"
    return f"HTTP {status}"


# ------------------------------------------------------------------------------------------ the forwarder


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


# ------------------------------------------------------------------------------------------ platform


class Kubernetes:
    name: ClassVar[str] = "kubernetes"
    Config: ClassVar[type[BaseModel]] = KubernetesConfig

    def __init__(self, config: KubernetesConfig, ctx: PlatformContext) -> None:
        self.config = config
        self.ctx = ctx
        self._api: Any = None
        self._lock = threading.Lock()
        self._capacity: Capacity | None = None  # from the last observe(); read by describe()

    # ----------------------------------------------------------------------------- connection

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def kubeconfig(self) -> str | None:
        return os.path.expanduser(self.config.kubeconfig) if self.config.kubeconfig else None

    def _where(self) -> str:
        where = self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        return where + (f" (context {self.config.context})" if self.config.context else "")

    def warm(self, writing: bool = False) -> None:
        import kubernetes.client  # noqa: F401 - imports are not safe to race from threads

    @property
    def api(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = self._new_api_client(self.kubeconfig, self.config.context)
            return self._api

    @staticmethod
    def _new_api_client(kubeconfig: str | None, context: str | None) -> Any:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        default = os.path.expanduser("~/.kube/config")
        try:
            # the client reads KUBECONFIG once, when it is imported: name the file(s) explicitly
            chosen = (
                kubeconfig or os.environ.get("KUBECONFIG") or (default if os.path.exists(default) else None)
            )
            if chosen or context:
                return config.new_client_from_config(
                    config_file=chosen or default, context=context, persist_config=False
                )
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        except (ConfigException, OSError, ValueError) as exc:
            where = kubeconfig or os.environ.get("KUBECONFIG") or default
            raise PlatformError(
                f"kubernetes: cannot load a client configuration from {where}: {exc}"
            ) from None

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: Any = API_TIMEOUT,
        stream: bool = False,
    ) -> tuple[int, Any]:
        """One API request: (HTTP status, decoded JSON or the raw response when ``stream``)."""
        import urllib3

        api = self.api
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            m, url, hdrs, data, post = api.param_serialize(
                method=method,
                resource_path=path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = api.call_api(m, url, hdrs, data, post, _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise PlatformError(
                f"kubernetes: cannot reach the API server ({self._where()}): {_short(exc)}"
            ) from None
        if stream and 200 <= response.status < 300:
            return response.status, response.response
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            return response.status, {"message": raw.decode("utf-8", "replace")[:500]}

    def _ok(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        status, data = self._call(method, path, **kwargs)
        if not 200 <= status < 300:
            raise PlatformError(f"kubernetes: {what}: {api_message(status, data)}")
        return data

    def _list(
        self, path: str, selector: Mapping[str, str] | None = None, metadata_only: bool = False
    ) -> list[Any]:
        query = [("labelSelector", selector_text(selector))] if selector else []
        accept = (
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            if metadata_only
            else "application/json"
        )
        data = self._ok("GET", path, f"list {path}", query=query, accept=accept)
        return list((data or {}).get("items") or [])

    def _paths(self, ns: str | None = None) -> dict[str, str]:
        ns = ns or self.namespace
        return {
            "Deployment": f"/apis/apps/v1/namespaces/{ns}/deployments",
            "Service": f"/api/v1/namespaces/{ns}/services",
            "Secret": f"/api/v1/namespaces/{ns}/secrets",
            "Pod": f"/api/v1/namespaces/{ns}/pods",
            "ReplicaSet": f"/apis/apps/v1/namespaces/{ns}/replicasets",
        }

    def _project_selector(self) -> dict[str, str]:
        return {MANAGED_BY: "taoplan", PROJECT: self.ctx.project}

    # ----------------------------------------------------------------------------- planning facts

    def replace_strategy(self, num_gpus: int, host_port: int | None) -> tuple[bool, str]:
        if host_port is not None and self.config.access == "port-forward":
            return False, f"fixed host_port {host_port} (the local port of the port-forward)"
        if host_port is not None and self.config.service_type == "NodePort":
            return False, f"fixed host_port {host_port} (the Service's nodePort)"
        if self._capacity is not None and not self._capacity.fits(num_gpus):
            _, most = self._capacity.largest
            return False, (
                f"the cluster cannot hold the GPUs twice ({num_gpus} {self.config.gpu_resource} wanted, "
                f"at most {most} free on one node)"
            )
        return True, ""

    def describe(self, spec: ServiceSpec) -> tuple[str, ...]:
        cfg = self.config
        how = (
            "a port-forward run by taoplan"
            if cfg.access == "port-forward"
            else f"the {cfg.service_type} Service"
        )
        lines = [
            f"kubernetes: Deployment + {cfg.service_type} Service in namespace {cfg.namespace}, reached through {how}"
        ]
        if self._capacity is None:
            lines.append(f"kubernetes: {spec.num_gpus} {cfg.gpu_resource}: fit not checked (no refresh)")
        else:
            lines.append(f"kubernetes: {self._capacity.describe(spec.num_gpus)}")
        return tuple(lines)

    # ----------------------------------------------------------------------------- render

    def prepare(self, deployments: Sequence[Deployment], taken: set[int]) -> dict[str, Placement]:
        used = set(taken) | {d.host_port for d in deployments if d.host_port is not None}
        out: dict[str, Placement] = {}
        for d in deployments:
            port = d.host_port
            if port is None and self.config.access == "port-forward":
                port = ports.first_free(used, what="local port for a port-forward")
                used.add(port)
            out[d.job_id] = Placement(host_port=port)
        return out

    def _node_port(self, placement: Placement) -> int | None:
        if (
            self.config.service_type == "NodePort"
            and placement.host_port is not None
            and self.config.access == "service"
        ):
            return placement.host_port
        return None

    def _service_port(self, placement: Placement) -> int:
        if self.config.access == "service" and self.config.service_type != "NodePort" and placement.host_port:
            return placement.host_port
        return self.ctx.refs.service.container_port

    def render(self, deployment: Deployment, placement: Placement) -> list[Artifact]:
        d = deployment
        name = object_name(d.service, d.job_id)
        context = {
            "d": d,
            "cfg": self.config,
            "name": name,
            "namespace": self.namespace,
            "labels": k8s_labels(d),
            "annotations": {SPEC_HASH: d.spec_hash, ARCH: d.network_arch},
            "selector": selector_for(self.ctx.project, d.job_id),
            "secret_name": secret_name(d.service, d.job_id),
            "container_port": self.ctx.refs.service.container_port,
            "readiness_path": self.ctx.refs.request.readiness.path,
            "startup_failures": STARTUP_FAILURES,
            "tolerations": [t.model_dump(exclude_none=True) for t in self.config.tolerations],
            "service_port": self._service_port(placement),
            "node_port": self._node_port(placement),
            "redacted": REDACTED,
        }
        artifacts = []
        if d.secret_names:
            secret_context = {**context, "name": secret_name(d.service, d.job_id)}
            artifacts.append(render_template(self.name, "secret.yaml.j2", secret_context))
        artifacts.append(render_template(self.name, "service.yaml.j2", context))
        artifacts.append(render_template(self.name, "deployment.yaml.j2", context))
        return artifacts

    def objects(self, artifacts: Sequence[Artifact], *, fill_secrets: bool) -> list[dict[str, Any]]:
        """The rendered files as API objects, Secret first and Deployment last (pods find their Secret).

        ``fill_secrets`` puts the real values (from the environment) into the Secret, in memory only.
        """
        import yaml

        out = []
        for artifact in artifacts:
            obj = yaml.safe_load(artifact.content)
            if not isinstance(obj, dict) or obj.get("kind") not in ("Deployment", "Service", "Secret"):
                raise PlatformError(f"kubernetes: {artifact.name} is not a Deployment, Service or Secret")
            if obj["kind"] == "Secret":
                data = obj.get("stringData") or {}
                for key, value in data.items():
                    if value != REDACTED:
                        raise PlatformError(f"kubernetes: {artifact.name} holds a value for {key}: refused")
                    if fill_secrets:
                        if key not in os.environ:
                            raise PlatformError(f"secret {key} is not set in the environment")
                        data[key] = os.environ[key]
            out.append(obj)
        order = {"Secret": 0, "Service": 1, "Deployment": 2}
        return sorted(out, key=lambda o: order[o["kind"]])

    def _object_path(self, obj: Mapping[str, Any]) -> str:
        meta = obj["metadata"]
        return f"{self._paths(meta.get('namespace') or self.namespace)[obj['kind']]}/{meta['name']}"

    def _apply(self, obj: Mapping[str, Any], dry_run: bool = False) -> tuple[int, Any]:
        query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
        if dry_run:
            query.append(("dryRun", "All"))
        return self._call(
            "PATCH",
            self._object_path(obj),
            query=query,
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    def _check_not_taken(self, obj: Mapping[str, Any], job_id: str) -> None:
        """Server-side apply would adopt an object of that name: refuse one that is not this job's."""
        status, data = self._call(
            "GET",
            self._object_path(obj),
            accept="application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
        )
        if status == 404:
            return
        if status >= 300:
            raise PlatformError(
                f"kubernetes: get {obj['kind']} {obj['metadata']['name']}: {api_message(status, data)}"
            )
        found = ((data or {}).get("metadata") or {}).get("labels") or {}
        if found.get(JOB_ID) != job_id or found.get(MANAGED_BY) != "taoplan":
            raise PlatformError(
                f"kubernetes: {obj['kind']} {self.namespace}/{obj['metadata']['name']} already exists and is not "
                f"job {job_id}'s (job-id label {found.get(JOB_ID)!r}); refusing to take it over"
            )

    # ----------------------------------------------------------------------------- apply

    def start(self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]) -> Started:
        d = deployment
        objs = self.objects(artifacts, fill_secrets=True)
        for obj in objs:
            self._check_not_taken(obj, d.job_id)
        applied: dict[str, Any] = {}
        for obj in objs:
            status, data = self._apply(obj)
            if not 200 <= status < 300:
                if applied:  # no half-applied job: what went in comes out (best effort; labels find it)
                    with contextlib.suppress(PlatformError):
                        self.remove(d.job_id)
                raise PlatformError(
                    f"{d.service}: server-side apply of {obj['kind']} {obj['metadata']['name']} refused: "
                    f"{api_message(status, data)}"
                )
            applied[obj["kind"]] = data
        name = object_name(d.service, d.job_id)
        extra: dict[str, Any] = {"k8s_namespace": self.namespace, "k8s_name": name}
        in_cluster = f"http://{name}.{self.namespace}.svc:{self._service_port(placement)}"
        host_url: str | None = None
        host_port = placement.host_port
        if self.config.access == "port-forward":
            assert host_port is not None
            try:
                extra["tunnel_pid"] = self._open_forwarder(d.job_id, host_port)
                host_url = f"http://127.0.0.1:{host_port}"
            except PlatformError:
                host_url = None  # endpoint() opens it while apply waits for readiness
        else:
            host_url = self._service_url(applied.get("Service") or {})
        return Started(
            host_url=host_url,
            host_port=host_port,
            docker_url=in_cluster,
            platform_job_id=f"{self.namespace}/{name}",
            extra=extra,
        )

    def dry_run(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> list[str]:
        """Problems the API server (and the cluster's state) would raise on apply, without changing anything.

        Each object goes through server-side apply with dryRun=All (validation, defaulting, admission);
        the pull secret is looked up (admission does not check it) and the GPUs are compared with what
        the eligible nodes can still allocate.
        """
        d = deployment
        problems: list[str] = []
        for obj in self.objects(artifacts, fill_secrets=False):
            status, data = self._apply(obj, dry_run=True)
            if not 200 <= status < 300:
                problems.append(
                    f"{d.service}: {obj['kind']} {obj['metadata']['name']}: {api_message(status, data)}"
                )
        problems += self._pull_secret_problems([d.image])
        try:
            cap = self._current_capacity()
        except PlatformError as exc:
            problems.append(f"{d.service}: GPU capacity not checked: {exc.message}")
        else:
            if not cap.fits(d.num_gpus):
                problems.append(f"{d.service}: {cap.describe(d.num_gpus)}")
        return problems

    def _pull_secret_problems(self, images: Sequence[str]) -> list[str]:
        name = self.config.image_pull_secret
        if name is None:
            on_ngc = sorted({i for i in images if i.startswith("nvcr.io/")})
            if on_ngc:
                return [
                    f"platforms.kubernetes.image_pull_secret is required for {on_ngc[0]} (nvcr.io): create the "
                    f"secret yourself (kubectl create secret docker-registry ... -n {self.namespace}) and name it there"
                ]
            return []
        status, data = self._call(
            "GET",
            f"{self._paths()['Secret']}/{name}",
            accept="application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
        )
        if status == 404:
            return [
                f"image pull secret {name!r} does not exist in namespace {self.namespace}: create it with "
                f"kubectl create secret docker-registry {name} -n {self.namespace} --docker-server=nvcr.io "
                "--docker-username='$oauthtoken' --docker-password=<NGC key> (taoplan never creates it)"
            ]
        if not 200 <= status < 300:
            return [f"image pull secret {name!r}: {api_message(status, data)}"]
        return []

    def stop(self, record: ServiceRecord) -> None:
        self.remove(record.job_id)
        self._close_forwarder(record)

    def remove(self, job_id: str) -> None:
        """Delete this job's Deployment, Service and Secret (listed by label, deleted by name and UID)."""
        selector = selector_for(self.ctx.project, job_id)
        paths = self._paths()
        for kind in ("Deployment", "Service", "Secret"):
            for item in self._list(paths[kind], selector, metadata_only=True):
                meta = item["metadata"]
                body = {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "propagationPolicy": "Background",
                    "preconditions": {"uid": meta["uid"]},
                }
                status, data = self._call("DELETE", f"{paths[kind]}/{meta['name']}", body=body)
                if status not in (200, 202, 404, 409):
                    raise PlatformError(
                        f"kubernetes: delete {kind} {meta['name']}: {api_message(status, data)}"
                    )
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while True:
            left = self._list(paths["Pod"], selector, metadata_only=True) + self._list(
                paths["ReplicaSet"], selector, metadata_only=True
            )
            if not left:
                return
            if time.monotonic() > deadline:
                names = ", ".join(i["metadata"]["name"] for i in left)
                raise PlatformError(
                    f"kubernetes: {names} still there {STOP_WAIT_SECONDS:g}s after deleting job {job_id} "
                    "(a node that does not answer keeps its pods: kubectl delete pod --force)"
                )
            time.sleep(0.5)

    # ----------------------------------------------------------------------------- observe

    def observe(self) -> dict[str, Observation]:
        paths = self._paths()
        selector = self._project_selector()
        deployments = self._list(paths["Deployment"], selector)
        pods = self._list(paths["Pod"], selector)
        leftovers = [
            (kind, item)
            for kind in ("Service", "Secret")
            for item in self._list(paths[kind], selector, metadata_only=True)
        ]
        self._capacity = self._try_capacity()
        out: dict[str, Observation] = {}
        for dep in deployments:
            obs = self._observation(dep, pods)
            if obs is not None:
                out[obs.job_id] = obs
        for kind, item in leftovers:
            lbl = item["metadata"].get("labels") or {}
            job_id = lbl.get(JOB_ID)
            if job_id and job_id not in out:
                out[job_id] = Observation(
                    job_id=job_id,
                    service=lbl.get(SERVICE, ""),
                    status="exited",
                    spec_hash=(item["metadata"].get("annotations") or {}).get(SPEC_HASH),
                    lineage=lbl.get(LINEAGE),
                    detail=f"its Deployment is gone; {kind} {item['metadata']['name']} is left",
                )
        return out

    def probe(self, job_id: str) -> Observation:
        selector = selector_for(self.ctx.project, job_id)
        paths = self._paths()
        deployments = self._list(paths["Deployment"], selector)
        if not deployments:
            return Observation(job_id=job_id, service="", status="missing")
        obs = self._observation(deployments[0], self._list(paths["Pod"], selector))
        return obs if obs is not None else Observation(job_id=job_id, service="", status="missing")

    def _observation(self, dep: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Observation | None:
        meta = dep.get("metadata") or {}
        lbl, ann = meta.get("labels") or {}, meta.get("annotations") or {}
        job_id = lbl.get(JOB_ID)
        if not job_id:
            return None
        mine = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(JOB_ID) == job_id]
        exit_code = None
        if meta.get("deletionTimestamp"):
            status, detail = "exited", f"Deployment {meta.get('name')} is being deleted"
        else:
            pod = newest([p for p in mine if pod_is_ready(p)]) or newest(mine)
            if pod is None:
                failure = _condition(dep, "ReplicaFailure")
                if failure.get("status") == "True":
                    status, detail = FATAL_STATUS, f"{failure.get('reason')}: {failure.get('message')}"
                else:
                    status, detail = "pending", "no pod yet"
            else:
                state = pod_state(pod)
                status = FATAL_STATUS if state.fatal and state.status != "exited" else state.status
                detail, exit_code = state.detail, state.exit_code
        return Observation(
            job_id=job_id,
            service=lbl.get(SERVICE, ""),
            status=status,
            spec_hash=ann.get(SPEC_HASH),
            lineage=lbl.get(LINEAGE),
            exit_code=exit_code,
            detail=detail,
        )

    def _current_capacity(self) -> Capacity:
        nodes = self._list("/api/v1/nodes")
        status, data = self._call(
            "GET", "/api/v1/pods", query=[("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed")]
        )
        note = ""
        if status == 403:
            data = self._ok("GET", self._paths()["Pod"], "list pods")
            note = f"only namespace {self.namespace}'s pods could be listed"
        elif not 200 <= status < 300:
            raise PlatformError(f"kubernetes: list pods: {api_message(status, data)}")
        cap = capacity(nodes, list((data or {}).get("items") or []), self.config)
        cap.note = note
        return cap

    def _try_capacity(self) -> Capacity | None:
        try:
            return self._current_capacity()
        except PlatformError:
            return None  # no right to list nodes: plan says "not checked"

    # ----------------------------------------------------------------------------- endpoint

    def _forward_spec(self, job_id: str, local_port: int) -> str:
        return forward_spec(local_port, self.namespace, job_id, self.ctx.refs.service.container_port)

    def _open_forwarder(self, job_id: str, local_port: int, timeout: float = 20.0) -> int:
        """Start this module's forwarder in its own session; return its PID once the local port answers."""
        spec = self._forward_spec(job_id, local_port)
        argv = [
            sys.executable,
            "-m",
            FORWARD_MODULE,
            "port-forward",
            "--spec",
            spec,
            "--project",
            self.ctx.project,
        ]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.config.context:
            argv += ["--context", self.config.context]
        log = self.ctx.state_dir / "tunnels" / f"{job_id}.log"
        secret_names = set(self.ctx.refs.service.secret_names)
        env = {k: v for k, v in os.environ.items() if k not in secret_names}
        return tunnel.spawn(
            argv, local_port, log, f"kubernetes: port-forward {spec}", timeout=timeout, env=env
        )

    def _close_forwarder(self, record: ServiceRecord) -> None:
        if record.host_port and self.config.access == "port-forward":
            close_forwarder(
                record.extra.get("tunnel_pid"), self._forward_spec(record.job_id, record.host_port)
            )

    def endpoint(self, record: ServiceRecord, reopen: bool = True) -> Endpoint:
        """The access path's URL, handed out once the job's pod is Ready, so that ready means both: the
        pod's Ready condition (the kubelet's readinessProbe passed) and the readiness check through the
        access path (the core's) answering 200.

        Before that, it is handed out only when the server answers a fatal reason through the access
        path (``model_load_failed``...), so that apply fails on it at once. A fatal reason does not turn
        into 200, whereas handing out the URL on "not answering" or "loading" would race with the server
        becoming ready a moment later, before the kubelet has probed it.
        """
        found = (
            self._service_endpoint(record)
            if self.config.access == "service"
            else self._forward_endpoint(record, reopen)
        )
        if found.url is None:
            return found
        gate = self._ready_gate(record, found.url)
        if gate:
            return Endpoint(None, gate, updates=found.updates)
        return found

    def _ready_gate(self, record: ServiceRecord, url: str) -> str:
        """Why ``url`` must not be handed out yet; "" when it may."""
        from taoplan.platforms.common.health import CONNECTING, FATAL, check

        pods = self._list(self._paths()["Pod"], selector_for(self.ctx.project, record.job_id))
        if any(pod_is_ready(p) for p in pods):
            return ""
        verdict = check(url, self.ctx.refs.request.readiness)
        if verdict.reason == CONNECTING:
            return "the pod is not Ready; the server does not answer yet"
        if verdict.kind == FATAL:
            return ""  # let the core see it and stop
        return f"the pod is not Ready yet (the server says: {verdict.reason})"

    def _forward_endpoint(self, record: ServiceRecord, reopen: bool) -> Endpoint:
        pid, local = record.extra.get("tunnel_pid"), record.host_port
        if local and forwarder_is_ours(pid, self._forward_spec(record.job_id, local)):
            return Endpoint(f"http://127.0.0.1:{local}")
        why = "port-forward not running" if pid else "no port-forward yet"
        if not reopen:
            return Endpoint(None, why)
        name = record.extra.get("k8s_name") or object_name(record.name, record.job_id)
        status, _ = self._call("GET", f"{self._paths()['Deployment']}/{name}")
        if status == 404:
            return Endpoint(None, f"Deployment {self.namespace}/{name} is gone")
        last: PlatformError | None = None
        for _ in range(3):  # a port taken between the check and the bind: take the next one
            if not local or not ports.bindable(local, reuse=True):
                local = ports.first_free(set(), what="local port for a port-forward")
            try:
                pid = self._open_forwarder(record.job_id, local)
                break
            except PlatformError as exc:
                last, local = exc, None
        else:
            assert last is not None
            raise last
        url = f"http://127.0.0.1:{local}"
        return Endpoint(
            url,
            detail=f"port-forward 127.0.0.1:{local} -> {self.namespace}/{name} opened ({why})",
            updates={"host_url": url, "host_port": local, "extra": {"tunnel_pid": pid}},
        )

    def _service_endpoint(self, record: ServiceRecord) -> Endpoint:
        if record.host_url:
            return Endpoint(record.host_url)
        name = record.extra.get("k8s_name") or object_name(record.name, record.job_id)
        status, data = self._call("GET", f"{self._paths()['Service']}/{name}")
        if status == 404:
            return Endpoint(None, f"Service {self.namespace}/{name} is gone")
        if not 200 <= status < 300:
            return Endpoint(None, f"Service {self.namespace}/{name}: {api_message(status, data)}")
        url = self._service_url(data)
        if url is None:
            return Endpoint(None, f"LoadBalancer Service {name}: no ingress address yet")
        return Endpoint(url, detail=f"Service address {url}", updates={"host_url": url})

    def _service_url(self, svc: Mapping[str, Any]) -> str | None:
        """The address of a Service from outside: LoadBalancer ingress, NodePort on a node, ClusterIP by DNS."""
        spec, meta = svc.get("spec") or {}, svc.get("metadata") or {}
        svc_ports = spec.get("ports") or [{}]
        kind = spec.get("type", self.config.service_type)
        if kind == "LoadBalancer":
            for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
                host = ingress.get("ip") or ingress.get("hostname")
                if host:
                    return f"http://{host}:{svc_ports[0].get('port')}"
            return None
        if kind == "NodePort":
            node_port = svc_ports[0].get("nodePort")
            address = self._node_address()
            return f"http://{address}:{node_port}" if node_port and address else None
        return f"http://{meta.get('name')}.{meta.get('namespace', self.namespace)}.svc:{svc_ports[0].get('port')}"

    def _node_address(self) -> str | None:
        """An address of an eligible Ready node: ExternalIP first, then InternalIP."""
        nodes = [n for n in self._list("/api/v1/nodes") if eligible(n, self.config)]
        for kind in ("ExternalIP", "InternalIP"):
            for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
                for address in (node.get("status") or {}).get("addresses") or []:
                    if address.get("type") == kind and address.get("address"):
                        return str(address["address"])
        return None

    # ----------------------------------------------------------------------------- logs, doctor

    def logs(self, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]:
        pods = self._list(self._paths()["Pod"], selector_for(self.ctx.project, record.job_id))
        pod = newest(pods)
        if pod is None:
            raise PlatformError(f"{record.name}: no pod of job {record.job_id} in namespace {self.namespace}")
        name = pod["metadata"]["name"]
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        cs = statuses[0] if statuses else {}
        state = cs.get("state") or {}
        if not cs or ("waiting" in state and not cs.get("restartCount")):
            yield f"[{name}: no container output yet: {pod_state(pod).detail}]"
            return
        query: list[tuple[str, Any]] = [("container", CONTAINER), ("tailLines", int(tail))]
        if "waiting" in state:
            query.append(("previous", "true"))  # crash-looping: the output of the run that failed
        path = f"{self._paths()['Pod']}/{name}/log"
        if not follow:
            status, data = self._call("GET", path, query=query, accept="*/*", stream=True)
            if not 200 <= status < 300:
                raise PlatformError(f"{record.name}: logs of {name}: {api_message(status, data)}")
            yield from data.data.decode("utf-8", "replace").splitlines()
            return
        status, response = self._call(
            "GET", path, query=[*query, ("follow", "true")], accept="*/*", stream=True, timeout=(5.0, None)
        )
        if not 200 <= status < 300:
            raise PlatformError(f"{record.name}: logs of {name}: {api_message(status, response)}")
        buffer = ""
        for chunk in response.stream(4096, decode_content=True):
            buffer += chunk.decode("utf-8", "replace")
            *lines, buffer = buffer.split("\n")
            yield from lines
        if buffer:
            yield buffer

    def doctor(self, deployments: Sequence[Deployment]) -> list[Check]:
        try:
            status, version = self._call("GET", "/version")
        except PlatformError as exc:
            return [Check("API server", False, exc.message)]
        if not 200 <= status < 300:
            return [Check("API server", False, f"{self._where()}: {api_message(status, version)}")]
        host = self.api.configuration.host
        checks = [
            Check("API server", True, f"{host}: Kubernetes {version.get('gitVersion')} ({self._where()})")
        ]
        denied = [what for what, allowed in self._access_reviews() if not allowed]
        checks.append(
            Check(
                "permissions",
                not denied,
                "SelfSubjectAccessReview allows every verb taoplan uses"
                if not denied
                else f"not allowed in namespace {self.namespace}: {', '.join(denied)}",
            )
        )
        status, data = self._call("GET", f"/api/v1/namespaces/{self.namespace}")
        if status == 404:
            checks.append(
                Check(
                    "namespace",
                    False,
                    f"{self.namespace} does not exist (kubectl create namespace {self.namespace})",
                )
            )
        elif status == 403:
            checks.append(Check("namespace", True, f"{self.namespace} (not readable here; assumed to exist)"))
        elif 200 <= status < 300:
            checks.append(Check("namespace", True, self.namespace))
        else:
            checks.append(Check("namespace", False, f"{self.namespace}: {api_message(status, data)}"))
        problems = self._pull_secret_problems([d.image for d in deployments])
        if problems:
            checks.append(Check("pull secret", False, problems[0]))
        elif self.config.image_pull_secret:
            checks.append(
                Check("pull secret", True, f"{self.config.image_pull_secret} exists in {self.namespace}")
            )
        else:
            checks.append(Check("pull secret", True, "none set (no image on nvcr.io)"))
        checks.append(self._gpu_check(deployments))
        return checks

    def _gpu_check(self, deployments: Sequence[Deployment]) -> Check:
        resource = self.config.gpu_resource
        try:
            cap = self._current_capacity()
        except PlatformError as exc:
            return Check("GPUs", False, f"cannot read node capacity: {exc.message}")
        wanted = sum(d.num_gpus for d in deployments)
        biggest = max((d.num_gpus for d in deployments), default=0)
        allocatable = sum(cap.allocatable.values())
        per_node = max(cap.allocatable.values(), default=0)
        ok = allocatable >= wanted and per_node >= biggest
        detail = (
            f"{wanted} {resource} requested (largest {biggest}); eligible nodes allocate {allocatable} "
            f"(at most {per_node} on one node), {sum(cap.free.values())} free now"
        )
        if not ok:
            detail += ": the pods would be Unschedulable"
        return Check("GPUs", ok, detail)

    def _access_reviews(self) -> list[tuple[str, bool]]:
        wanted: list[tuple[str, str, str, str]] = []  # (verb, group, resource, subresource)
        for verb in ("get", "list", "create", "patch", "delete"):
            wanted += [
                (verb, "apps", "deployments", ""),
                (verb, "", "services", ""),
                (verb, "", "secrets", ""),
            ]
        wanted += [
            ("get", "", "pods", ""),
            ("list", "", "pods", ""),
            ("get", "", "pods", "log"),
            ("list", "apps", "replicasets", ""),
        ]
        if self.config.access == "port-forward":
            wanted += [("get", "", "pods", "portforward"), ("create", "", "pods", "portforward")]
        out = []
        for verb, group, resource, sub in wanted:
            body = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "namespace": self.namespace,
                        "verb": verb,
                        "group": group,
                        "resource": resource,
                        "subresource": sub,
                    }
                },
            }
            data = self._ok(
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                "SelfSubjectAccessReview",
                body=body,
            )
            allowed = bool(((data or {}).get("status") or {}).get("allowed"))
            out.append((f"{verb} {resource}{'/' + sub if sub else ''}", allowed))
        nodes = self._ok(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "list", "resource": "nodes"}},
            },
        )
        out.append(("list nodes (cluster-wide)", bool(((nodes or {}).get("status") or {}).get("allowed"))))
        return out


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


PLATFORM = Kubernetes


# ------------------------------------------------------------------------------------------ forwarder process


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

    api_client = Kubernetes._new_api_client(kubeconfig, context)
    core = client.CoreV1Api(api_client)
    # kubernetes.stream swaps ApiClient.call_api while it opens a websocket, which is not thread-safe:
    # port-forwards get a client of their own and open one at a time; listing uses the other one.
    forward_core = client.CoreV1Api(Kubernetes._new_api_client(kubeconfig, context))
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
            log(f"connection failed: {type(exc).__name__}: {_short(exc)}")
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
