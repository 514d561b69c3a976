"""What the cluster says about this project's jobs: observations by label, one job's probe, its pod's logs.

Why a module of its own: the planner decides from these observations alone, so the reading of a
Deployment and its pods (a ready pod first, else the newest; a Deployment that is gone but left a
Service or Secret) is kept in one place, apart from the code that changes objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taoplan.errors import PlatformError
from taoplan.platforms.base import Observation

from .api import Session, api_message
from .names import CONTAINER, JOB_ID, LINEAGE, SERVICE, SPEC_HASH, project_selector, selector_for
from .pods import FATAL_STATUS, condition, newest, pod_is_ready, pod_state

if TYPE_CHECKING:
    from taoplan.store.state import ServiceRecord


def observation(dep: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Observation | None:
    """A Deployment and its pods, in the core's words; None for one without a job-id label."""
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
            failure = condition(dep, "ReplicaFailure")
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


class Listing:
    """One project's Deployments, pods and leftover Services and Secrets, as listed by label."""

    def __init__(self, session: Session) -> None:
        paths = session.paths()
        selector = project_selector(session.ctx.project)
        self.deployments = session.items(paths["Deployment"], selector)
        self.pods = session.items(paths["Pod"], selector)
        self.leftovers = [
            (kind, item)
            for kind in ("Service", "Secret")
            for item in session.items(paths[kind], selector, metadata_only=True)
        ]

    def observations(self) -> dict[str, Observation]:
        out: dict[str, Observation] = {}
        for dep in self.deployments:
            obs = observation(dep, self.pods)
            if obs is not None:
                out[obs.job_id] = obs
        for kind, item in self.leftovers:
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


def probe(session: Session, job_id: str) -> Observation:
    selector = selector_for(session.ctx.project, job_id)
    paths = session.paths()
    deployments = session.items(paths["Deployment"], selector)
    if not deployments:
        return Observation(job_id=job_id, service="", status="missing")
    obs = observation(deployments[0], session.items(paths["Pod"], selector))
    return obs if obs is not None else Observation(job_id=job_id, service="", status="missing")


def logs(session: Session, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]:
    """The output of the job's newest pod (of its last run, if it is crash-looping)."""
    pods = session.items(session.paths()["Pod"], selector_for(session.ctx.project, record.job_id))
    pod = newest(pods)
    if pod is None:
        raise PlatformError(f"{record.name}: no pod of job {record.job_id} in namespace {session.namespace}")
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
    path = f"{session.paths()['Pod']}/{name}/log"
    if not follow:
        status, data = session.call("GET", path, query=query, accept="*/*", stream=True)
        if not 200 <= status < 300:
            raise PlatformError(f"{record.name}: logs of {name}: {api_message(status, data)}")
        yield from data.data.decode("utf-8", "replace").splitlines()
        return
    status, response = session.call(
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
