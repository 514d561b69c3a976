"""The services table: what each platform reports (missing, exited, failed, pending) joined with the
gateway watcher's readiness verdicts, judged by the rules of ``taoplan status`` (``engine.status``).

The platforms are asked (``Workspace.refresh``: one Docker list, one squeue, one pod list) in a
worker thread, one at a time, at most every ``MIN_AGE`` seconds and only while a page polls; a
page gets the last observation at once and the next one on its next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taoplan.engine.status import observed_state, ready_state
from taoplan.errors import TaoplanError
from taoplan.platforms.common.health import WAIT
from taoplan.traffic.stats import parse_time

if TYPE_CHECKING:
    from taoplan.engine.workspace import Workspace
    from taoplan.platforms.base import Observation
    from taoplan.store.state import ServiceRecord, State
    from taoplan.traffic.gateway.core import Gateway
    from taoplan.traffic.gateway.table import Service

MIN_AGE = 1.0  # seconds an observation is served before the platforms are asked again


@dataclass(frozen=True)
class Snapshot:
    state: State
    observed: dict[str, Observation] | None  # None: a platform could not be asked (``error``)
    error: str | None
    at: float  # time.time() of the observation


def _observe(ws: Workspace) -> Snapshot:
    state = ws.store.load()
    try:
        return Snapshot(state, ws.refresh(state), None, time.time())
    except TaoplanError as exc:
        return Snapshot(state, None, exc.message, time.time())
    except Exception as exc:  # noqa: BLE001 - a platform library failing: say so, keep serving
        return Snapshot(state, None, f"{type(exc).__name__}: {exc}", time.time())


class Observer:
    """The last platform observation, renewed on demand in a worker thread (never two at once)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.snapshot: Snapshot | None = None
        self._task: asyncio.Future[Snapshot] | None = None
        self._asked = 0.0

    async def current(self) -> Snapshot | None:
        ws = self.gw.watcher.workspace
        if ws is None:
            return None
        now = time.monotonic()
        if self._task is None and now - self._asked >= MIN_AGE:
            self._asked = now
            self._task = asyncio.ensure_future(asyncio.to_thread(_observe, ws))
            self._task.add_done_callback(self._done)
        if self.snapshot is None and self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._task)
        return self.snapshot

    def _done(self, task: asyncio.Future[Snapshot]) -> None:
        self._task = None
        if not task.cancelled() and task.exception() is None:
            self.snapshot = task.result()


def judge(service: Service, record: ServiceRecord | None, snap: Snapshot | None) -> tuple[str, str]:
    """(state, the server's reason) of one workload, as ``taoplan status`` would say it now."""
    fresh = snap is not None and snap.observed is not None and record is not None
    if fresh and record is not None and record.job_id == service.target.job_id:
        assert snap is not None and snap.observed is not None
        decided = observed_state(snap.observed.get(record.job_id))
        if decided is not None:
            return decided
    if service.url is None:
        return "starting", service.detail
    if record is None:
        return ("ready", "") if service.ready else ("starting", service.reason)
    state, detail = ready_state(record, service.verdict)
    if service.verdict.kind == WAIT and service.verdict.message and detail == service.verdict.reason:
        detail = f"{detail}: {service.verdict.message}"
    return state, detail


def service_row(service: Service, snap: Snapshot | None, archs: frozenset[str], now: float) -> dict[str, Any]:
    """One workload's row: ``name`` is its service (what links and keys use), ``replica`` its
    instance key; ``draining``: out of routing, finishing its requests before a rollout stops it."""
    t = service.target
    record = snap.state.record_of(t.job_id) if snap is not None else None
    state, reason = judge(service, record, snap)
    started = parse_time(t.started_at)
    running = state in ("ready", "starting") and started is not None
    return {
        "name": service.name,
        "replica": service.key,
        "draining": t.draining,
        "retiring": t.retiring,
        "in_flight": service.inflight,
        "arch": t.arch,
        "kind": "tao" if t.arch in archs else "server",
        "platform": t.platform,
        "state": state,
        "reason": reason or None,
        "host_url": t.host_url,
        "job_id": t.job_id,
        "started_at": t.started_at,
        "uptime_s": round(now - started.timestamp(), 1) if running and started is not None else None,
        "time_to_ready_s": record.extra.get("time_to_ready") if record is not None else None,
        "num_gpus": t.num_gpus,
    }


async def services(gw: Gateway, observer: Observer, allowed: Any) -> dict[str, Any]:
    """The table's JSON: a row per workload of every service ``allowed(name)`` admits (a service's
    replicas, then any workload a rollout is retiring, under it), and whether the platforms answered."""
    snap = await observer.current()
    now = time.time()
    archs = frozenset(gw.refs.request.archs)
    rows = [
        service_row(service, snap, archs, now)
        for name in gw.table.names()
        if allowed(name)
        for service in gw.table.workloads(name)
    ]
    return {
        "services": rows,
        "observed_at": snap.at if snap is not None else None,
        "platform_error": snap.error if snap is not None else "the platforms have not been asked yet",
        "now": now,
    }
