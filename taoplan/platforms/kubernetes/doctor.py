"""Checks before anything changes: `taoplan doctor`'s findings and `plan --server-dry-run`'s problems.

Why a module of its own: what the API server would refuse (dry-run apply), what the cluster lacks (the
namespace, the pull secret, GPUs) and what this identity may not do (SelfSubjectAccessReview of every
verb taoplan uses) are read-only questions, asked the same way by doctor and by the dry run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taoplan.errors import PlatformError
from taoplan.platforms.base import Artifact, Check, Deployment, Placement

from .api import METADATA, Session, api_message
from .capacity import current_capacity
from .objects import parse, server_side_apply

ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def pull_secret_problems(session: Session, images: Sequence[str]) -> list[str]:
    name = session.config.image_pull_secret
    ns = session.namespace
    if name is None:
        on_ngc = sorted({i for i in images if i.startswith("nvcr.io/")})
        if on_ngc:
            return [
                f"platforms.kubernetes.image_pull_secret is required for {on_ngc[0]} (nvcr.io): create the "
                f"secret yourself (kubectl create secret docker-registry ... -n {ns}) and name it there"
            ]
        return []
    status, data = session.call("GET", f"{session.paths()['Secret']}/{name}", accept=METADATA)
    if status == 404:
        return [
            f"image pull secret {name!r} does not exist in namespace {ns}: create it with "
            f"kubectl create secret docker-registry {name} -n {ns} --docker-server=nvcr.io "
            "--docker-username='$oauthtoken' --docker-password=<NGC key> (taoplan never creates it)"
        ]
    if not 200 <= status < 300:
        return [f"image pull secret {name!r}: {api_message(status, data)}"]
    return []


def dry_run(
    session: Session, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
) -> list[str]:
    """Problems the API server (and the cluster's state) would raise on apply, without changing anything.

    Each object goes through server-side apply with dryRun=All (validation, defaulting, admission);
    the pull secret is looked up (admission does not check it) and the GPUs are compared with what
    the eligible nodes can still allocate.
    """
    d = deployment
    problems: list[str] = []
    for obj in parse(artifacts, fill_secrets=False):
        status, data = server_side_apply(session, obj, dry_run=True)
        if not 200 <= status < 300:
            problems.append(
                f"{d.service}: {obj['kind']} {obj['metadata']['name']}: {api_message(status, data)}"
            )
    problems += pull_secret_problems(session, [d.image])
    try:
        cap = current_capacity(session)
    except PlatformError as exc:
        problems.append(f"{d.service}: GPU capacity not checked: {exc.message}")
    else:
        if not cap.fits(d.num_gpus):
            problems.append(f"{d.service}: {cap.describe(d.num_gpus)}")
    return problems


def doctor(session: Session, deployments: Sequence[Deployment]) -> list[Check]:
    ns = session.namespace
    try:
        status, version = session.call("GET", "/version")
    except PlatformError as exc:
        return [Check("API server", False, exc.message)]
    if not 200 <= status < 300:
        return [Check("API server", False, f"{session.where()}: {api_message(status, version)}")]
    host = session.api.configuration.host
    checks = [
        Check("API server", True, f"{host}: Kubernetes {version.get('gitVersion')} ({session.where()})")
    ]
    denied = [what for what, allowed in access_reviews(session) if not allowed]
    checks.append(
        Check(
            "permissions",
            not denied,
            "SelfSubjectAccessReview allows every verb taoplan uses"
            if not denied
            else f"not allowed in namespace {ns}: {', '.join(denied)}",
        )
    )
    status, data = session.call("GET", f"/api/v1/namespaces/{ns}")
    if status == 404:
        checks.append(Check("namespace", False, f"{ns} does not exist (kubectl create namespace {ns})"))
    elif status == 403:
        checks.append(Check("namespace", True, f"{ns} (not readable here; assumed to exist)"))
    elif 200 <= status < 300:
        checks.append(Check("namespace", True, ns))
    else:
        checks.append(Check("namespace", False, f"{ns}: {api_message(status, data)}"))
    problems = pull_secret_problems(session, [d.image for d in deployments])
    if problems:
        checks.append(Check("pull secret", False, problems[0]))
    elif session.config.image_pull_secret:
        checks.append(Check("pull secret", True, f"{session.config.image_pull_secret} exists in {ns}"))
    else:
        checks.append(Check("pull secret", True, "none set (no image on nvcr.io)"))
    checks.append(gpu_check(session, deployments))
    return checks


def gpu_check(session: Session, deployments: Sequence[Deployment]) -> Check:
    resource = session.config.gpu_resource
    try:
        cap = current_capacity(session)
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


def allowed(session: Session, attributes: Mapping[str, Any]) -> bool:
    """One SelfSubjectAccessReview: may this identity do what ``attributes`` describe?"""
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": dict(attributes)},
    }
    data = session.ok("POST", ACCESS_REVIEWS, "SelfSubjectAccessReview", body=body)
    return bool(((data or {}).get("status") or {}).get("allowed"))


def access_reviews(session: Session) -> list[tuple[str, bool]]:
    """Each verb taoplan uses (in the namespace, and listing nodes cluster-wide), and whether it is allowed."""
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
    if session.config.access == "port-forward":
        wanted += [("get", "", "pods", "portforward"), ("create", "", "pods", "portforward")]
    out = []
    for verb, group, resource, sub in wanted:
        attributes = {
            "namespace": session.namespace,
            "verb": verb,
            "group": group,
            "resource": resource,
            "subresource": sub,
        }
        out.append((f"{verb} {resource}{'/' + sub if sub else ''}", allowed(session, attributes)))
    out.append(("list nodes (cluster-wide)", allowed(session, {"verb": "list", "resource": "nodes"})))
    return out
