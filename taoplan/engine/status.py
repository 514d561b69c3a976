"""`taoplan status`: recorded services joined with what runs now and one readiness probe each."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from taoplan.engine import phases
from taoplan.engine.workspace import Workspace, format_duration
from taoplan.errors import ConfigError
from taoplan.platforms.base import Endpoint, Observation
from taoplan.platforms.common.health import CONNECTING, FATAL, READY, Verdict, check
from taoplan.spec.payload import readiness_of
from taoplan.store.state import ServiceRecord, State

COLUMNS = (
    "name",
    "role",
    "job_id",
    "platform",
    "arch",
    "host_url",
    "state",
    "ready",
    "started_at",
    "time_to_ready",
    "slowest_phase",
    "time_left",
)


def _probe_readiness(ws: Workspace, record: ServiceRecord, found: Endpoint) -> Verdict:
    assert found.url is not None
    return check(
        found.url, readiness_of(record.spec, ws.refs), headers=found.headers
    )  # TAO's or the server's


def observed_state(obs: Observation | None) -> tuple[str, str] | None:
    """(state, detail) when the platform's observation decides it alone (missing, exited, failed,
    pending); None when the workload runs and its readiness answer decides (``ready_state``)."""
    if obs is None or obs.status == "missing":
        return "missing", ""
    if obs.status == "exited":
        return "exited", f"exit code {obs.exit_code}" if obs.exit_code is not None else obs.detail
    if obs.status == "failed":
        return "failed", obs.detail
    if obs.status == "pending":
        return "starting", obs.detail
    return None


def ready_state(record: ServiceRecord, verdict: Verdict) -> tuple[str, str]:
    """(state, detail) of a running workload from its readiness verdict; a ready server whose smoke
    request failed at apply is failed."""
    if verdict.reason == CONNECTING:
        return "starting", "not answering"
    if verdict.kind == FATAL:
        return "failed", f"{verdict.reason}: {verdict.message}"
    if verdict.kind != READY:
        return "starting", verdict.reason
    if (record.readiness or "").startswith("smoke_failed"):
        return "failed", record.readiness or ""  # ready, but apply's request failed
    return "ready", ""


def _row(
    ws: Workspace, state: State, record: ServiceRecord, obs: Observation | None, refresh: bool
) -> dict[str, Any]:
    detail = record.readiness or ""
    decided = observed_state(obs) if refresh else None
    if not refresh:
        current = record.status
    elif decided is not None:
        current, detail = decided
        if current == "missing" and record.status in ("failed", "exited"):
            current, detail = record.status, f"{record.readiness or ''} (removed)"  # a failed rollout
    else:
        found = ws.endpoint(state, record)
        if found.url is None:
            current, detail = "starting", found.detail
        else:
            current, detail = ready_state(record, _probe_readiness(ws, record, found))
    expires_in = obs.expires_in if refresh and obs is not None else None
    return {
        "name": record.name,
        "service": record.service_name,
        "role": role_of(state, record),
        "job_id": record.job_id,
        "platform": record.platform,
        "arch": record.network_arch,
        "host_url": record.host_url,
        "state": current,
        "ready": current == "ready",
        "started_at": record.started_at,
        "time_to_ready": record.extra.get("time_to_ready"),
        "slowest_phase": phases.slowest(record.phases),
        "phases": record.phases,  # every phase of the last apply (engine/phases.py), for --json
        "time_left": format_duration(expires_in) if expires_in is not None else None,
        "detail": detail,
    }


def role_of(state: State, record: ServiceRecord) -> str:
    """current | retiring (replaced, serves until its successor is ready) | draining (out of
    routing, finishing requests)."""
    if record.draining:
        return "draining"
    return "retiring" if record.job_id in state.retiring else "current"


def collect(ws: Workspace, state: State, refresh: bool = True) -> list[dict[str, Any]]:
    observed = ws.refresh(state) if refresh else {}
    records = sorted(state.records(), key=lambda r: (r.service_name, r.name, r.job_id in state.retiring))
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(records)))) as pool:
        return list(pool.map(lambda r: _row(ws, state, r, observed.get(r.job_id), refresh), records))


def service_logs(ws: Workspace, state: State, name: str, tail: int, follow: bool) -> Iterator[str]:
    """A service's log lines from its platform (`taoplan logs`, the dashboard's logs tail)."""
    record = state.services.get(name) or state.record_of(name)
    if record is None:
        raise ConfigError(f"no service named {name!r} in state; known: {', '.join(state.services) or 'none'}")
    return ws.platform(record.platform, state.lineage).logs(record, tail, follow)
