"""Every label and annotation name taoplan stamps on what it runs, in one place for all platforms,
and the instance key the service label carries: the service name for a service's first replica,
then ``name.1``, ``name.2``... (a dot never occurs in a service name, a DNS-1123 label)."""

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


def instance_key(service: str, replica: int) -> str:
    """The key of one replica: in state, in the service label, in ``model``."""
    return service if replica == 0 else f"{service}.{replica}"


def service_of(key: str) -> str:
    """The service an instance key belongs to."""
    return key.split(".", 1)[0]


def replica_of(key: str) -> int:
    """The replica number of an instance key (0 for the service name itself)."""
    _, dot, tail = key.partition(".")
    return int(tail) if dot and tail.isdigit() else 0


def dns_name(key: str) -> str:
    """An instance key where a dot is not allowed (Kubernetes and Lepton object names): ``chat-1``."""
    return key.replace(".", "-")
