"""GPU capacity as a platform reports it during refresh: the places a workload could go, how many
GPUs each has and has free, and who holds the rest.

Platforms only report what they read (NVML or nvidia-smi and the containers' device requests;
sinfo, squeue and ``sbatch --test-only``; nodes and pods). The verdict (fits / queues / cannot
fit / unknown) is decided once, for every platform alike, by ``taoplan.engine.fit`` from these
values: nothing there asks the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Place:
    """One place a single workload must fit in whole: a node, the Docker host, a VM."""

    name: str
    gpus: int  # the most one workload can get there (configured / allocatable GPUs)
    free: int  # not held by anything now
    group: str = ""  # a partition, a node group: for the messages only


@dataclass(frozen=True)
class Hold:
    """GPUs held on a place by one workload."""

    place: str
    gpus: int
    job_id: str | None = None  # a taoplan job_id when the holder carries our labels (any project)
    who: str = ""  # how to name it otherwise: "slurm job 41 (alice: train)", "container web"


@dataclass(frozen=True)
class Capacity:
    """What one platform can give, from one reading. ``unknown`` non-empty: no GPU information."""

    resource: str = "GPU"
    places: tuple[Place, ...] = ()
    holds: tuple[Hold, ...] = ()
    #: the platform holds a workload back until GPUs free up (Slurm, Kubernetes); Docker does not
    queues: bool = True
    unknown: str = ""
    #: why ``places`` is empty (the partition or node selector matches nothing)
    no_place: str = ""
    #: GPUs asked -> the platform's own start estimate for such a workload (Slurm: sbatch --test-only)
    estimates: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def not_known(cls, why: str) -> Capacity:
        return cls(unknown=why)


def capacity_of(platform: object, wanted: tuple[int, ...]) -> Capacity:
    """``platform.capacity(wanted)``, or "unknown" for a platform that does not report capacity."""
    method = getattr(platform, "capacity", None)
    if method is None:
        name = getattr(platform, "name", type(platform).__name__)
        return Capacity.not_known(f"platform {name} does not report GPU capacity (yet)")
    result: Capacity = method(wanted)
    return result
