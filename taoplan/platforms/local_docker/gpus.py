"""local-docker's GPU capacity: the host's GPUs (NVML or nvidia-smi), less what running containers
hold by device request (``--gpus N`` / ``all`` / ``device=...``), whoever started them.

Docker does not queue: a container asked to start on busy GPUs starts anyway and fails (or shares),
so this platform reports ``queues=False`` and the fit model says "cannot fit" while they are busy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from taoplan import labels
from taoplan.platforms.capacity import Capacity, Hold, Place
from taoplan.platforms.common.gpuhost import Gpu

HOST = "this host"


def requested_gpus(host_config: Mapping[str, Any], total: int) -> int:
    """GPUs one container holds by its device requests (Count -1 means every GPU)."""
    held = 0
    for request in host_config.get("DeviceRequests") or []:
        caps = [c for group in request.get("Capabilities") or [] for c in group]
        if "gpu" not in caps and request.get("Driver") != "nvidia":
            continue
        ids = request.get("DeviceIDs") or []
        count = request.get("Count") or 0
        held += len(ids) if ids else (total if count == -1 else int(count))
    return min(held, total)


def holds_of(inspected: Sequence[Mapping[str, Any]], total: int) -> list[Hold]:
    out = []
    for attrs in inspected:
        gpus = requested_gpus(attrs.get("HostConfig") or {}, total)
        if not gpus:
            continue
        lbl = (attrs.get("Config") or {}).get("Labels") or {}
        name = str(attrs.get("Name") or attrs.get("Id", "")[:12]).lstrip("/")
        job_id = lbl.get(labels.JOB_ID)
        who = f"container {name}"
        if job_id and lbl.get(labels.PROJECT):
            who = f"service {lbl.get(labels.SERVICE)} of project {lbl.get(labels.PROJECT)} ({name})"
        out.append(Hold(HOST, gpus, job_id=job_id, who=who))
    return out


def capacity(
    gpus: list[Gpu] | None, why: str, running: Callable[[], list[dict[str, Any]]], gpus_setting: str
) -> Capacity:
    """``running()``: the running containers, inspected (HostConfig.DeviceRequests, Config.Labels)."""
    if gpus_setting == "none":
        return Capacity.not_known("platforms.local-docker.gpus is none: containers get no GPU to count")
    if gpus is None:
        return Capacity.not_known(why)
    total = len(gpus)
    holds = holds_of(running(), total)
    free = max(0, total - sum(h.gpus for h in holds))
    kinds = ", ".join(sorted({g.name for g in gpus}))
    place = f"{HOST} ({total} x {kinds})" if total else HOST
    return Capacity(
        places=(Place(place, total, free),),
        holds=tuple(Hold(place, h.gpus, h.job_id, h.who) for h in holds),
        queues=False,
    )


def inspect_all(
    get: Callable[[str], tuple[int, bytes]], summaries: Sequence[Mapping[str, Any]]
) -> list[dict]:
    """Inspect each running container over the socket: GET /containers/ID/json."""
    out = []
    for summary in summaries:
        status, body = get(f"/containers/{summary.get('Id')}/json")
        if status == 200:
            data = json.loads(body)
            if isinstance(data, dict):
                out.append(data)
    return out
