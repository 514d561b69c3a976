"""The job's Deployment, Service and Secret: rendered from templates, read back, applied, deleted.

Why a module of its own: apply sends exactly what `taoplan render` shows. The objects are rendered from
templates/kubernetes/*.yaml.j2, parsed back from those files, filled with the secret values from the
environment (in memory only) and sent with server-side apply; destroy deletes exactly what carries the
job's labels, by name and UID. Everything about the objects' lifecycle lives here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from taoplan.common import secrets
from taoplan.errors import PlatformError
from taoplan.platforms.base import Artifact, Deployment, Placement
from taoplan.platforms.common.templates import render_template

from .api import METADATA, Session, api_message
from .names import (
    ARCH,
    FIELD_MANAGER,
    JOB_ID,
    MANAGED_BY,
    SPEC_HASH,
    k8s_labels,
    object_name,
    secret_name,
    selector_for,
)

TEMPLATES = "kubernetes"  # templates/kubernetes/
REDACTED = "<redacted: from the environment at apply>"
#: startupProbe: every 5 s, up to 2 h of model loading before the kubelet restarts the container.
STARTUP_FAILURES = 1440
#: How long stop() waits for the pods of a deleted Deployment to go.
STOP_WAIT_SECONDS = 120.0
#: The order objects are applied in: pods find their Secret, and the Service exists before them.
APPLY_ORDER = {"Secret": 0, "Service": 1, "Deployment": 2}


def node_port(session: Session, placement: Placement) -> int | None:
    cfg = session.config
    if cfg.service_type == "NodePort" and placement.host_port is not None and cfg.access == "service":
        return placement.host_port
    return None


def service_port(session: Session, placement: Placement) -> int:
    cfg = session.config
    if cfg.access == "service" and cfg.service_type != "NodePort" and placement.host_port:
        return placement.host_port
    return session.ctx.refs.service.container_port


def render(session: Session, deployment: Deployment, placement: Placement) -> list[Artifact]:
    d, ctx = deployment, session.ctx
    context = {
        "d": d,
        "cfg": session.config,
        "name": object_name(d.service, d.job_id),
        "namespace": session.namespace,
        "labels": k8s_labels(d),
        "annotations": {SPEC_HASH: d.spec_hash, ARCH: d.network_arch},
        "selector": selector_for(ctx.project, d.job_id),
        "secret_name": secret_name(d.service, d.job_id),
        "container_port": d.container_port,
        "readiness_path": d.readiness.path if d.readiness else ctx.refs.request.readiness.path,
        "startup_failures": STARTUP_FAILURES,
        "tolerations": [t.model_dump(exclude_none=True) for t in session.config.tolerations],
        "service_port": service_port(session, placement),
        "node_port": node_port(session, placement),
        "redacted": REDACTED,
    }
    artifacts = []
    if d.secret_names:
        secret_context = {**context, "name": secret_name(d.service, d.job_id)}
        artifacts.append(render_template(TEMPLATES, "secret.yaml.j2", secret_context))
    artifacts.append(render_template(TEMPLATES, "service.yaml.j2", context))
    artifacts.append(render_template(TEMPLATES, "deployment.yaml.j2", context))
    return artifacts


def parse(artifacts: Sequence[Artifact], *, fill_secrets: bool) -> list[dict[str, Any]]:
    """The rendered files as API objects, Secret first and Deployment last (pods find their Secret).

    ``fill_secrets`` puts the real values (from the environment) into the Secret, in memory only.
    """
    import yaml

    out = []
    for artifact in artifacts:
        obj = yaml.safe_load(artifact.content)
        if not isinstance(obj, dict) or obj.get("kind") not in APPLY_ORDER:
            raise PlatformError(f"kubernetes: {artifact.name} is not a Deployment, Service or Secret")
        if obj["kind"] == "Secret":
            data = obj.get("stringData") or {}
            for key, value in data.items():
                if value != REDACTED:
                    raise PlatformError(f"kubernetes: {artifact.name} holds a value for {key}: refused")
                if fill_secrets:
                    data[key] = secrets.require(key)
        out.append(obj)
    return sorted(out, key=lambda o: APPLY_ORDER[o["kind"]])


def server_side_apply(session: Session, obj: Mapping[str, Any], dry_run: bool = False) -> tuple[int, Any]:
    query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
    if dry_run:
        query.append(("dryRun", "All"))
    return session.call(
        "PATCH",
        session.object_path(obj),
        query=query,
        body=obj,
        content_type="application/apply-patch+yaml",
    )


def check_not_taken(session: Session, obj: Mapping[str, Any], job_id: str) -> None:
    """Server-side apply would adopt an object of that name: refuse one that is not this job's."""
    status, data = session.call("GET", session.object_path(obj), accept=METADATA)
    if status == 404:
        return
    if status >= 300:
        raise PlatformError(
            f"kubernetes: get {obj['kind']} {obj['metadata']['name']}: {api_message(status, data)}"
        )
    found = ((data or {}).get("metadata") or {}).get("labels") or {}
    if found.get(JOB_ID) != job_id or found.get(MANAGED_BY) != "taoplan":
        raise PlatformError(
            f"kubernetes: {obj['kind']} {session.namespace}/{obj['metadata']['name']} already exists and is "
            f"not job {job_id}'s (job-id label {found.get(JOB_ID)!r}); refusing to take it over"
        )


def apply_all(
    session: Session, deployment: Deployment, objs: Sequence[Mapping[str, Any]], undo: Callable[[], None]
) -> dict[str, Any]:
    """Apply ``objs`` in order; each kind's answer from the API server. On a refusal, ``undo`` what went in."""
    for obj in objs:
        check_not_taken(session, obj, deployment.job_id)
    applied: dict[str, Any] = {}
    for obj in objs:
        status, data = server_side_apply(session, obj)
        if not 200 <= status < 300:
            if applied:  # no half-applied job: what went in comes out (best effort; labels find it)
                with contextlib.suppress(PlatformError):
                    undo()
            raise PlatformError(
                f"{deployment.service}: server-side apply of {obj['kind']} {obj['metadata']['name']} refused: "
                f"{api_message(status, data)}"
            )
        applied[obj["kind"]] = data
    return applied


def remove(session: Session, job_id: str) -> None:
    """Delete this job's Deployment, Service and Secret (listed by label, deleted by name and UID)."""
    selector = selector_for(session.ctx.project, job_id)
    paths = session.paths()
    for kind in ("Deployment", "Service", "Secret"):
        for item in session.items(paths[kind], selector, metadata_only=True):
            meta = item["metadata"]
            body = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "propagationPolicy": "Background",
                "preconditions": {"uid": meta["uid"]},
            }
            status, data = session.call("DELETE", f"{paths[kind]}/{meta['name']}", body=body)
            if status not in (200, 202, 404, 409):
                raise PlatformError(f"kubernetes: delete {kind} {meta['name']}: {api_message(status, data)}")
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while True:
        left = session.items(paths["Pod"], selector, metadata_only=True) + session.items(
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
