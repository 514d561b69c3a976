"""`taoplan status`: recorded services joined with what runs now and one readiness probe each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from taoplan.engine import phases
from taoplan.engine.workspace import Workspace, format_duration
from taoplan.platforms.base import Endpoint, Observation
from taoplan.platforms.common.health import CONNECTING, FATAL, READY, check
from taoplan.spec.payload import readiness_of
from taoplan.store.state import ServiceRecord, State

COLUMNS = (
    "name",
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


def _probe_readiness(ws: Workspace, record: ServiceRecord, found: Endpoint) -> tuple[str, str]:
    assert found.url is not None
    # TAO's readiness contract, or the server type's own
    verdict = check(found.url, readiness_of(record.spec, ws.refs), headers=found.headers)
    if verdict.reason == CONNECTING:
        return "starting", "not answering"
    if verdict.kind == READY:
        return "ready", ""
    if verdict.kind == FATAL:
        return "failed", f"{verdict.reason}: {verdict.message}"
    return "starting", verdict.reason


def _row(
    ws: Workspace, state: State, record: ServiceRecord, obs: Observation | None, refresh: bool
) -> dict[str, Any]:
    detail = record.readiness or ""
    if not refresh:
        current = record.status
    elif obs is None or obs.status == "missing":
        current = "missing"
    elif obs.status == "exited":
        current, detail = "exited", f"exit code {obs.exit_code}" if obs.exit_code is not None else obs.detail
    elif obs.status == "failed":
        current, detail = "failed", obs.detail
    elif obs.status == "pending":
        current, detail = "starting", obs.detail
    else:
        found = ws.endpoint(state, record)
        if found.url is None:
            current, detail = "starting", found.detail
        else:
            current, detail = _probe_readiness(ws, record, found)
            if current == "ready" and (record.readiness or "").startswith("smoke_failed"):
                current, detail = "failed", record.readiness or ""  # ready, but apply's request failed
    expires_in = obs.expires_in if refresh and obs is not None else None
    return {
        "name": record.name,
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


def collect(ws: Workspace, state: State, refresh: bool = True) -> list[dict[str, Any]]:
    observed = ws.refresh(state) if refresh else {}
    records = list(state.services.values())
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(records)))) as pool:
        return list(pool.map(lambda r: _row(ws, state, r, observed.get(r.job_id), refresh), records))
