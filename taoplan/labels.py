"""Every label and annotation name taoplan stamps on what it runs, in one place for all platforms."""

from __future__ import annotations

PROJECT = "taoplan.project"
SERVICE = "taoplan.service"
JOB_ID = "taoplan.job-id"
SPEC_HASH = "taoplan.spec-hash"
LINEAGE = "taoplan.lineage"  # the state file's identity: tells our orphans from another checkout's
TAO_JOB = "tao-job"  # the TAO skill's own label, so its tooling recognises the container
NODE_PORT = "taoplan.node-port"  # slurm: the node port a job listens on, in its --comment

# Kubernetes spells them as prefixed keys (the spec hash and arch are annotations there).
K8S_MANAGED_BY = "app.kubernetes.io/managed-by"
K8S_PROJECT = "taoplan.io/project"
K8S_SERVICE = "taoplan.io/service"
K8S_JOB_ID = "taoplan.io/job-id"
K8S_LINEAGE = "taoplan.io/lineage"
K8S_SPEC_HASH = "taoplan.io/spec-hash"
K8S_ARCH = "taoplan.io/network-arch"


def for_deployment(project: str, lineage: str, service: str, job_id: str, spec_hash: str) -> dict[str, str]:
    return {
        PROJECT: project,
        SERVICE: service,
        JOB_ID: job_id,
        SPEC_HASH: spec_hash,
        LINEAGE: lineage,
        TAO_JOB: job_id,
    }
