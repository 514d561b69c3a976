"""How taoplan reaches a job's server: through its recorded port-forward, or through the Service's address.

Why a module of its own: the access path is the one part that outlives the objects' apply (a forwarder
is reopened when it died, a LoadBalancer address appears later), and "ready" means two things that
must agree: the pod's Ready condition and the readiness answer through this path. Both are decided
here, so apply, status and request hand out the same URL at the same moment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taoplan.errors import PlatformError
from taoplan.platforms.base import Deployment, Endpoint, Placement, Started
from taoplan.platforms.common import ports, tunnel
from taoplan.spec.payload import container_port_of, readiness_of

from .api import Session, api_message
from .capacity import eligible
from .forward import close_forwarder, forward_spec, forwarder_argv, forwarder_is_ours
from .names import object_name, selector_for
from .objects import service_port
from .pods import pod_is_ready

if TYPE_CHECKING:
    from taoplan.store.state import ServiceRecord


def job_forward_spec(session: Session, job_id: str, local_port: int, pod_port: int) -> str:
    return forward_spec(local_port, session.namespace, job_id, pod_port)


def record_pod_port(session: Session, record: ServiceRecord) -> int:
    """The port the record's server listens on in its pod (TAO's, or the server type's own)."""
    return container_port_of(record.spec, session.ctx.refs)


def open_forwarder(
    session: Session, job_id: str, local_port: int, pod_port: int, timeout: float = 20.0
) -> int:
    """Start the forwarder in its own session; return its PID once the local port answers."""
    spec = job_forward_spec(session, job_id, local_port, pod_port)
    argv = forwarder_argv(spec, session.ctx.project, session.kubeconfig, session.config.context)
    log = session.ctx.state_dir / "tunnels" / f"{job_id}.log"
    secret_names = set(session.ctx.refs.service.secret_names)
    env = {k: v for k, v in os.environ.items() if k not in secret_names}
    return tunnel.spawn(argv, local_port, log, f"kubernetes: port-forward {spec}", timeout=timeout, env=env)


def close_record_forwarder(session: Session, record: ServiceRecord) -> None:
    if record.host_port and session.config.access == "port-forward":
        close_forwarder(
            record.extra.get("tunnel_pid"),
            job_forward_spec(session, record.job_id, record.host_port, record_pod_port(session, record)),
        )


def started(
    session: Session, deployment: Deployment, placement: Placement, applied: Mapping[str, Any]
) -> Started:
    """What start() reports once the objects are in: the access path opened if it can be already."""
    d = deployment
    name = object_name(d.service, d.job_id)
    extra: dict[str, Any] = {"k8s_namespace": session.namespace, "k8s_name": name}
    in_cluster = f"http://{name}.{session.namespace}.svc:{service_port(session, placement)}"
    host_url: str | None = None
    host_port = placement.host_port
    if session.config.access == "port-forward":
        assert host_port is not None
        try:
            extra["tunnel_pid"] = open_forwarder(session, d.job_id, host_port, d.container_port)
            host_url = f"http://127.0.0.1:{host_port}"
        except PlatformError:
            host_url = None  # endpoint() opens it while apply waits for readiness
    else:
        host_url = service_url(session, applied.get("Service") or {})
    return Started(
        host_url=host_url,
        host_port=host_port,
        docker_url=in_cluster,
        platform_job_id=f"{session.namespace}/{name}",
        extra=extra,
    )


def endpoint(session: Session, record: ServiceRecord, reopen: bool = True) -> Endpoint:
    """The access path's URL, handed out once the job's pod is Ready, so that ready means both: the
    pod's Ready condition (the kubelet's readinessProbe passed) and the readiness check through the
    access path (the core's) answering 200.

    Before that, it is handed out only when the server answers a fatal reason through the access
    path (``model_load_failed``...), so that apply fails on it at once. A fatal reason does not turn
    into 200, whereas handing out the URL on "not answering" or "loading" would race with the server
    becoming ready a moment later, before the kubelet has probed it.
    """
    found = (
        service_endpoint(session, record)
        if session.config.access == "service"
        else forward_endpoint(session, record, reopen)
    )
    if found.url is None:
        return found
    gate = ready_gate(session, record, found.url)
    if gate:
        return Endpoint(None, gate, updates=found.updates)
    return found


def ready_gate(session: Session, record: ServiceRecord, url: str) -> str:
    """Why ``url`` must not be handed out yet; "" when it may."""
    from taoplan.platforms.common.health import CONNECTING, FATAL, check

    pods = session.items(session.paths()["Pod"], selector_for(session.ctx.project, record.job_id))
    if any(pod_is_ready(p) for p in pods):
        return ""
    verdict = check(url, readiness_of(record.spec, session.ctx.refs))  # TAO's or the server type's
    if verdict.reason == CONNECTING:
        return "the pod is not Ready; the server does not answer yet"
    if verdict.kind == FATAL:
        return ""  # let the core see it and stop
    return f"the pod is not Ready yet (the server says: {verdict.reason})"


def forward_endpoint(session: Session, record: ServiceRecord, reopen: bool) -> Endpoint:
    """The recorded forwarder's URL; a new forwarder (on the same port if it is free) when it is gone."""
    pid, local = record.extra.get("tunnel_pid"), record.host_port
    pod_port = record_pod_port(session, record)
    if local and forwarder_is_ours(pid, job_forward_spec(session, record.job_id, local, pod_port)):
        return Endpoint(f"http://127.0.0.1:{local}")
    why = "port-forward not running" if pid else "no port-forward yet"
    if not reopen:
        return Endpoint(None, why)
    name = record.extra.get("k8s_name") or object_name(record.name, record.job_id)
    status, _ = session.call("GET", f"{session.paths()['Deployment']}/{name}")
    if status == 404:
        return Endpoint(None, f"Deployment {session.namespace}/{name} is gone")
    local, pid = ports.open_on_free_port(
        local,
        lambda port: open_forwarder(session, record.job_id, port, pod_port),
        what="local port for a port-forward",
    )
    url = f"http://127.0.0.1:{local}"
    return Endpoint(
        url,
        detail=f"port-forward 127.0.0.1:{local} -> {session.namespace}/{name} opened ({why})",
        updates={"host_url": url, "host_port": local, "extra": {"tunnel_pid": pid}},
    )


def service_endpoint(session: Session, record: ServiceRecord) -> Endpoint:
    if record.host_url:
        return Endpoint(record.host_url)
    name = record.extra.get("k8s_name") or object_name(record.name, record.job_id)
    status, data = session.call("GET", f"{session.paths()['Service']}/{name}")
    if status == 404:
        return Endpoint(None, f"Service {session.namespace}/{name} is gone")
    if not 200 <= status < 300:
        return Endpoint(None, f"Service {session.namespace}/{name}: {api_message(status, data)}")
    url = service_url(session, data)
    if url is None:
        return Endpoint(None, f"LoadBalancer Service {name}: no ingress address yet")
    return Endpoint(url, detail=f"Service address {url}", updates={"host_url": url})


def service_url(session: Session, svc: Mapping[str, Any]) -> str | None:
    """The address of a Service from outside: LoadBalancer ingress, NodePort on a node, ClusterIP by DNS."""
    spec, meta = svc.get("spec") or {}, svc.get("metadata") or {}
    svc_ports = spec.get("ports") or [{}]
    kind = spec.get("type", session.config.service_type)
    if kind == "LoadBalancer":
        for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            host = ingress.get("ip") or ingress.get("hostname")
            if host:
                return f"http://{host}:{svc_ports[0].get('port')}"
        return None
    if kind == "NodePort":
        node_port = svc_ports[0].get("nodePort")
        address = node_address(session)
        return f"http://{address}:{node_port}" if node_port and address else None
    return (
        f"http://{meta.get('name')}.{meta.get('namespace', session.namespace)}.svc:{svc_ports[0].get('port')}"
    )


def node_address(session: Session) -> str | None:
    """An address of an eligible Ready node: ExternalIP first, then InternalIP."""
    nodes = [n for n in session.items("/api/v1/nodes") if eligible(n, session.config)]
    for kind in ("ExternalIP", "InternalIP"):
        for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == kind and address.get("address"):
                    return str(address["address"])
    return None
