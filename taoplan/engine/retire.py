"""Taking a workload away without failing a request: the last steps of a rolling replace, a scale
down and a delete.

For a recorded workload, in order, each step journaled before the next:
1. (rollout) wait until every running gateway that routes it also routes its successor;
2. mark it draining in state: gateways take it out of routing;
3. wait until no gateway has a request in flight on it (up to ``drain_timeout``);
4. stop it on its own platform, drop its registry entry and its record.

A crash between steps leaves it recorded (retiring, or draining), so the next plan finishes the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from taoplan.common import faults
from taoplan.engine.drain import Waited, until_drained, until_routed
from taoplan.engine.progress import Reporter
from taoplan.engine.workspace import Workspace
from taoplan.platforms.base import Platform
from taoplan.spec.config import ServiceSpec
from taoplan.store.journal import Journal
from taoplan.store.state import ServiceRecord, State

#: the services file's default, for records written before drain_timeout existed
DEFAULT_DRAIN_TIMEOUT: float = ServiceSpec.model_fields["drain_timeout"].default


def drain_timeout_of(record: ServiceRecord) -> float:
    """How long a recorded workload may drain, from the spec it was started with."""
    value = record.spec.get("drain_timeout")
    return float(value) if isinstance(value, (int, float)) else DEFAULT_DRAIN_TIMEOUT


@dataclass
class Retirer:
    ws: Workspace
    journal: Journal
    reporter: Reporter
    platform: Callable[[str], Platform]
    save: Callable[[Callable[[State], object]], State]  # mutate and write state; returns it
    run: Callable[..., Awaitable[Any]]  # a blocking platform call in a parallelism slot

    async def retire(self, state: State, key: str, successor: ServiceRecord, timeout: float) -> None:
        """Every retiring predecessor of instance ``key``, once ``successor`` is ready."""
        for old in state.retiring_for(key):
            if old.job_id != successor.job_id:
                await self.drain_and_stop(old, successor, timeout)

    async def drain_and_stop(
        self, record: ServiceRecord, successor: ServiceRecord | None, timeout: float
    ) -> None:
        service, job = record.name, record.job_id
        await self.drain(record, successor, timeout)
        self.reporter.phase(service, f"deleting {job[:8]}")
        await self.run(self.platform(record.platform).stop, record)
        rollout = successor is not None  # else a delete (scale down, removed service, unfinished rollout)
        self.journal.write(
            "executed", service=service, job_id=job, action="stop-old" if rollout else "delete"
        )
        faults.point("rollout-after-stop-old" if rollout else "delete-after-stop")
        await asyncio.to_thread(self.ws.registry.remove, job)
        self.save(lambda s: _forget(s, job))
        outcome = "retire" if rollout else "delete"
        self.journal.write("outcome", service=service, job_id=job, action=outcome, outcome="deleted")

    async def drain(self, record: ServiceRecord, successor: ServiceRecord | None, timeout: float) -> None:
        """Steps 1 to 3: the successor routed (if any), draining in state, no request in flight."""
        service, job = record.name, record.job_id
        if successor is not None and not record.draining:
            self.reporter.phase(successor.name, f"waiting for the gateways to route {successor.job_id[:8]}")
            routed = await until_routed(self.ws.store.dir, successor.job_id, [job], timeout)
            self._step(service, successor.job_id, "routed", routed)
            faults.point("rollout-after-routed")
        self.reporter.phase(service, f"draining {job[:8]}")
        written = self.save(lambda s: _mark_draining(s, job))
        self._step(service, job, "draining", None)
        faults.point("rollout-after-draining")
        drained = await until_drained(self.ws.store.dir, job, written.serial, timeout)
        self._step(service, job, "drained", drained)

    def _step(self, service: str, job_id: str, step: str, waited: Waited | None) -> None:
        fields: dict[str, Any] = {"service": service, "job_id": job_id, "step": step}
        if waited is not None:
            fields.update(ok=waited.ok, seconds=round(waited.seconds, 3))
            if not waited.ok:
                fields["outstanding"] = waited.detail
                self.reporter.phase(
                    service, f"{step}: gave up waiting after {waited.seconds:.0f} s: {waited.detail}"
                )
        self.journal.write("rollout", **fields)


def _mark_draining(state: State, job_id: str) -> None:
    if job_id in state.retiring:
        state.retiring[job_id].draining = True
        return
    for record in state.services.values():
        if record.job_id == job_id:
            record.draining = True


def _forget(state: State, job_id: str) -> None:
    if state.retiring.pop(job_id, None) is not None:
        return
    for key, record in list(state.services.items()):
        if record.job_id == job_id:
            del state.services[key]
