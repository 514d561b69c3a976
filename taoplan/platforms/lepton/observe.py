"""What the workspace says about this project's jobs: observations by label, one job's probe, its
endpoint with the Bearer token it wants, and its replica's log.

Why a module of its own: the planner decides from these observations alone, and the readiness wait
from ``endpoint``: a deployment that Lepton holds back (NoCapacity, Queueing) or cannot start
(ConfigError, an exited container) has no endpoint, so the wait asks ``probe``, which reports it as
pending or failed. One reading of state, phase and replica readiness serves all three.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taoplan.errors import PlatformError
from taoplan.platforms.base import Endpoint, Observation

from .api import Session
from .names import JOB_ID, LINEAGE, SERVICE, SPEC_HASH, env_of_workspace_secret, is_ours

if TYPE_CHECKING:
    from taoplan.store.state import ServiceRecord

#: Replica readiness reasons: Lepton holds the replica back (wait) / it cannot start (stop waiting).
HELD = ("NoCapacity", "Queueing", "RequireReadinessApproval")
FATAL = ("ConfigError",)
#: States with no serving container.
GONE = ("Stopping", "Stopped", "Deleting")
#: How long a log read waits for more output before it returns what it has (the route follows).
LOG_IDLE_SECONDS = 3


@dataclass(frozen=True)
class Reading:
    """One deployment in the core's words."""

    status: str  # running | pending | failed | exited
    detail: str
    exit_code: int | None = None
    serving: bool = True  # may the endpoint be handed out for the readiness poll


def state_of(dep: Any) -> tuple[str, str]:
    status = dep.status
    if status is None:
        return "Unknown", "Unknown"
    state = status.state.value if status.state is not None else "Unknown"
    phase = status.phase.value if status.phase is not None else state
    return state, phase


def issue(session: Session, name: str) -> tuple[str, str]:
    """(reason, message) of the first replica's first readiness issue; ("", "") when none."""
    found = session.call(
        f"GET /deployments/{name}/readiness", session.client().deployment.get_readiness, name
    )
    for issues in (found.root or {}).values():
        for item in issues:
            return item.reason.value, item.message
    return "", ""


def termination(session: Session, name: str) -> tuple[int | None, str]:
    found = session.call(
        f"GET /deployments/{name}/termination", session.client().deployment.get_termination, name
    )
    for items in (found.root or {}).values():
        if items:
            last = items[-1]
            return last.exit_code, last.message
    return None, ""


def read(session: Session, dep: Any) -> Reading:
    """Status, phase and (unless Ready) replica readiness -> a Reading."""
    name = dep.metadata.name
    state, phase = state_of(dep)
    if state == "Ready":
        return Reading("running", "Ready")
    if phase in GONE or state in GONE:
        return Reading("exited", f"deployment {name} is {phase}", serving=False)
    if state == "Error":
        code, message = termination(session, name)
        return Reading(
            "exited", f"deployment {name}: Error: {message or 'the container exited'}", code, False
        )
    reason, message = issue(session, name)
    if reason in FATAL:
        return Reading("failed", f"{reason}: {message}", serving=False)
    if reason in HELD:
        return Reading("pending", f"{reason}: {message}", serving=False)
    if reason == "SystemError":
        return Reading("pending", f"{reason}: {message}", serving=False)
    return Reading("running", f"{state}: {reason or 'no readiness issue'} {message}".strip())


def observation(session: Session, dep: Any) -> Observation:
    lbl = dep.metadata.labels or {}
    r = read(session, dep)
    return Observation(
        job_id=lbl[JOB_ID],
        service=lbl.get(SERVICE, ""),
        status=r.status,
        spec_hash=lbl.get(SPEC_HASH),
        lineage=lbl.get(LINEAGE),
        exit_code=r.exit_code,
        detail=r.detail,
    )


def ours(session: Session) -> list[Any]:
    """This project's deployments (by label)."""
    listed = session.call("GET /deployments", session.client().deployment.list_all)
    return [d for d in listed if d.metadata is not None and is_ours(d.metadata.labels, session.ctx.project)]


def observations(session: Session) -> dict[str, Observation]:
    out: dict[str, Observation] = {}
    for dep in ours(session):
        obs = observation(session, dep)
        out[obs.job_id] = obs
    return out


def find(session: Session, job_id: str, name: str | None = None) -> Any:
    """The job's deployment: by its recorded name (one GET), else by label; None when gone."""
    from .objects import get

    if name:
        dep = get(session, name)
        if dep is not None and (dep.metadata.labels or {}).get(JOB_ID) == job_id:
            return dep
        return None
    for dep in ours(session):
        if (dep.metadata.labels or {}).get(JOB_ID) == job_id:
            return dep
    return None


def probe(session: Session, job_id: str, name: str | None = None) -> Observation:
    dep = find(session, job_id, name)
    if dep is None:
        return Observation(job_id=job_id, service="", status="missing")
    return observation(session, dep)


def token_headers(session: Session, dep: Any) -> tuple[dict[str, str], str]:
    """The endpoint's Authorization header (from the environment, or the deployment's generated
    token), or ({}, why not)."""
    tokens = (dep.spec.api_tokens if dep.spec is not None else None) or []
    if not tokens:
        return {}, ""  # an endpoint without tokens is open
    first = tokens[0]
    if first.value:
        return {"Authorization": f"Bearer {first.value}"}, ""
    ref = first.value_from.token_name_ref if first.value_from is not None else None
    env = env_of_workspace_secret(ref or "") or session.config.endpoint_token_secret
    value = os.environ.get(env) if env else None
    if not value:
        return {}, f"the endpoint token {env or ref} is not set in the environment"
    return {"Authorization": f"Bearer {value}"}, ""


def endpoint(session: Session, record: ServiceRecord) -> Endpoint:
    """The deployment's external endpoint with its Bearer token, once Lepton runs a replica for it."""
    dep = find(session, record.job_id, record.platform_job_id)
    if dep is None:
        return Endpoint(None, f"deployment {record.platform_job_id or record.job_id} is gone")
    r = read(session, dep)
    if not r.serving:
        return Endpoint(None, r.detail)
    url = dep.status.endpoint.external_endpoint if dep.status is not None else ""
    if not url:
        return Endpoint(None, f"deployment {dep.metadata.name}: no external endpoint yet")
    headers, why = token_headers(session, dep)
    if why:
        return Endpoint(None, why)
    updates = {"host_url": url} if url != record.host_url else {}
    return Endpoint(url, updates=updates, headers=headers)


def logs(session: Session, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]:
    """The replica's output from the log route. It follows while the replica runs, so a read that
    sees no new output for LOG_IDLE_SECONDS ends (unless ``follow``)."""
    import requests

    name = record.platform_job_id
    if not name:
        raise PlatformError(f"{record.name}: no Lepton deployment recorded for job {record.job_id}")
    client = session.client()
    replicas = session.call(f"GET /deployments/{name}/replicas", client.deployment.get_replicas, name)
    if not replicas:
        yield f"[{name}: no replica yet]"
        return
    rid = replicas[0].metadata.id_ or replicas[0].id_
    stream = session.call(
        f"GET /deployments/{name}/replicas/{rid}/log",
        client.deployment.get_log,
        name,
        rid,
        timeout=None if follow else LOG_IDLE_SECONDS,
    )
    buffer, lines = "", []
    with contextlib.suppress(requests.exceptions.ConnectionError):  # read timeout: no more output now
        for chunk in _chunks(session, stream, name):
            buffer += chunk
            *done, buffer = buffer.split("\n")
            if follow:
                yield from done
            else:
                lines += done
    if buffer:
        lines.append(buffer)
    if follow:
        yield from lines
    else:
        yield from lines[-tail:] if tail > 0 else lines


def _chunks(session: Session, stream: Iterator[str], name: str) -> Iterator[str]:
    try:
        yield from stream
    except RuntimeError as exc:  # the SDK's answer to a bad status of the log route
        raise PlatformError(session.message(f"logs of {name}", exc)) from None
