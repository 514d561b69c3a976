"""What taoplan calls its Kubernetes objects and how it finds them again: names, labels, selectors.

Why a module of its own: every other part (render, apply, observe, destroy, the forwarder) must agree
on exactly these names and labels, since objects are found by label and deleted by name, never
guessed. Pure functions only; nothing here talks to a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from taoplan import labels
from taoplan.errors import PlatformError
from taoplan.spec.platform_settings import LABEL_VALUE

if TYPE_CHECKING:
    from taoplan.platforms.base import Deployment

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


def object_name(service: str, job_id: str) -> str:
    """tao-<instance>-<first 8 of the job id>: a DNS-1035 label of at most 53 characters (a
    replica's instance key ``chat.1`` is spelled ``chat-1``: a dot is not allowed there)."""
    return f"tao-{labels.dns_name(service)}-{job_id.replace('-', '')[:8]}"


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


def project_selector(project: str) -> dict[str, str]:
    return {MANAGED_BY: "taoplan", PROJECT: project}


def selector_text(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
