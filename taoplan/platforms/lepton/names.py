"""What taoplan calls its Lepton objects and how it finds them again: names, labels, secret names.

Why a module of its own: render, apply, observe and destroy must agree on exactly these names, since
deployments are found by label and deleted by name, never guessed. Pure functions only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from taoplan import labels
from taoplan.errors import PlatformError
from taoplan.spec.platform_settings import LABEL_VALUE

if TYPE_CHECKING:
    from taoplan.platforms.base import Deployment

#: Lepton deployment names (as TAO core's get_job_name): a lowercase letter first, at most 36.
NAME_MAX = 36
NAME_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
MANAGED_BY = "taoplan.managed-by"
PROJECT, SERVICE, JOB_ID, LINEAGE, SPEC_HASH = (
    labels.PROJECT,
    labels.SERVICE,
    labels.JOB_ID,
    labels.LINEAGE,
    labels.SPEC_HASH,
)


def job8(job_id: str) -> str:
    return job_id.replace("-", "")[:8]


def deployment_name(service: str, job_id: str) -> str:
    """tao-<instance>-<first 8 of the job id> (``chat.1`` as ``chat-1``); check it with ``name_problem``."""
    return f"tao-{labels.dns_name(service)}-{job8(job_id)}"


def name_problem(name: str) -> str:
    """Why Lepton would refuse ``name`` as a deployment name; "" when it is fine."""
    if len(name) > NAME_MAX:
        longest = NAME_MAX - len("tao--") - 8
        return (
            f"the Lepton deployment name {name!r} is {len(name)} characters, Lepton allows at most "
            f"{NAME_MAX}: use a service name of at most {longest} characters"
        )
    if not NAME_RE.fullmatch(name):
        return f"the Lepton deployment name {name!r} must be lowercase letters, digits and '-'"
    return ""


def secret_prefix(job_id: str) -> str:
    return f"TAOPLAN_{job8(job_id).upper()}_"


def workspace_secret(job_id: str, env_name: str) -> str:
    """The workspace secret that holds ``env_name`` for this job (its own: stop deletes it)."""
    return secret_prefix(job_id) + env_name


def env_of_workspace_secret(name: str) -> str | None:
    """The environment variable a workspace secret of taoplan's was made from; None if not ours."""
    match = re.fullmatch(r"TAOPLAN_[0-9A-F]{8}_([A-Z_][A-Z0-9_]*)", name)
    return match.group(1) if match else None


def lepton_labels(deployment: Deployment) -> dict[str, str]:
    """The core's labels (labels.py), checked as Kubernetes label values (Lepton runs on it)."""
    out = {MANAGED_BY: "taoplan"}
    for key in (PROJECT, SERVICE, JOB_ID, LINEAGE, SPEC_HASH, labels.TAO_JOB):
        value = deployment.labels.get(key)
        if value is None:
            continue
        if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            raise PlatformError(f"lepton: {key}={value!r} is not a valid label value")
        out[key] = value
    return out


def is_ours(metadata_labels: dict[str, str] | None, project: str) -> bool:
    lbl = metadata_labels or {}
    return lbl.get(MANAGED_BY) == "taoplan" and lbl.get(PROJECT) == project and bool(lbl.get(JOB_ID))
