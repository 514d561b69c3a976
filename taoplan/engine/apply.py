"""The apply engine: carry out a Plan, concurrently and journaled, and record every outcome.

Order of events for one instance, each written to the journal before the platform is touched:
intent -> (recreate: stop the old workload first; rolling: the old one moves to ``retiring`` and
keeps serving) -> state record "creating" under the new job_id -> render -> start -> registry
entry -> readiness -> smoke -> outcome -> (rolling: route, drain and delete the old one,
engine/retire.py). A crash at any point leaves labels, state and journal that the next plan reads
correctly; replicas of one service roll one at a time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from taoplan.common import faults, hashing
from taoplan.engine import phases, smoke
from taoplan.engine.placement import place
from taoplan.engine.plan import CREATE, DELETE, NOOP, REPLACE, Change, Plan
from taoplan.engine.progress import Reporter
from taoplan.engine.readiness import Result, wait_ready
from taoplan.engine.retire import Retirer, drain_timeout_of
from taoplan.engine.smoke import OnSmoke, SmokeResult
from taoplan.engine.workspace import Workspace
from taoplan.errors import TaoplanError
from taoplan.platforms.base import Deployment, Endpoint, Observation, Placement, Platform
from taoplan.spec import payload
from taoplan.spec.desired import Desired
from taoplan.store.journal import Journal
from taoplan.store.state import ServiceRecord, State

T = TypeVar("T")
LOG_TAIL = 20


@dataclass(frozen=True)
class Outcome:
    service: str
    action: str
    ok: bool
    message: str
    job_id: str | None = None


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Applier:
    def __init__(
        self,
        ws: Workspace,
        state: State,
        journal: Journal,
        reporter: Reporter,
        parallelism: int = 8,
        on_smoke: OnSmoke | None = None,
    ):
        """``on_smoke`` gets the request-log fields of each smoke request (the CLI writes them)."""
        self.on_smoke = on_smoke
        self.ws = ws
        self.state = state
        self.journal = journal
        self.reporter = reporter
        self.parallelism = max(1, parallelism)
        self._state_lock = threading.Lock()
        self._sem: asyncio.Semaphore | None = None
        self._clocks: dict[str, phases.Clock] = {}  # job_id -> this apply's phase timings
        self._rolling: dict[str, asyncio.Lock] = {}  # service -> one rolling replace at a time
        self._halted: dict[str, str] = {}  # service -> why its rollout stopped
        self.retirer = Retirer(ws, journal, reporter, self.platform, self._save, self._run)

    # ----------------------------------------------------------------------------- helpers

    def platform(self, name: str) -> Platform:
        return self.ws.platform(name, self.state.lineage)

    def _save(self, mutate: Callable[[State], object]) -> State:
        with self._state_lock:
            mutate(self.state)
            return self.ws.store.write(self.state)

    def _put(self, record: ServiceRecord) -> None:
        """Record ``record`` as its instance's current workload."""
        self._save(lambda s: s.services.__setitem__(record.name, record))

    def _save_record(self, record: ServiceRecord) -> None:
        """Persist ``record`` if state still holds this job as its instance's current workload."""

        def put(state: State) -> None:
            current = state.services.get(record.name)
            if current is not None and current.job_id == record.job_id:
                state.services[record.name] = record

        self._save(put)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """A blocking platform call, holding one of the --parallelism slots."""
        assert self._sem is not None
        async with self._sem:
            return await asyncio.to_thread(fn, *args)

    def _log_tail(self, platform: Platform, record: ServiceRecord) -> list[str]:
        try:
            return list(platform.logs(record, LOG_TAIL, False))[-LOG_TAIL:]
        except Exception:  # noqa: BLE001 - a log tail is a courtesy; never mask the real failure
            return []

    # ----------------------------------------------------------------------------- entry point

    def run(self, plan: Plan, desired: dict[str, Desired]) -> list[Outcome]:
        for name in sorted({c.platform for c in plan.changes}):
            self.platform(name).warm(writing=True)
        executor = ThreadPoolExecutor(max_workers=self.parallelism + 4, thread_name_prefix="taoplan")

        async def main() -> list[Outcome]:
            asyncio.get_running_loop().set_default_executor(executor)
            self._sem = asyncio.Semaphore(self.parallelism)
            deletes = [c for c in plan.changes if c.action == DELETE]
            others = [c for c in plan.changes if c.action != DELETE]
            results = list(await asyncio.gather(*(self._guard(c, self._delete(c)) for c in deletes)))
            placements = await asyncio.to_thread(place, self.ws, self.state, self.platform, others, desired)
            results += await asyncio.gather(
                *(self._guard(c, self._converge(c, desired[c.service], placements)) for c in others)
            )
            return results

        try:
            return asyncio.run(main())
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    async def _guard(self, change: Change, work: Awaitable[Outcome]) -> Outcome:
        """One service's failure is its own outcome; the others carry on."""
        try:
            return await work
        except TaoplanError as exc:
            self.journal.write(
                "outcome", service=change.service, action=change.action, outcome="failed", message=exc.message
            )
            self.reporter.done(change.service, False, exc.message)
            return Outcome(change.service, change.action, False, exc.message, change.job_id)

    # ----------------------------------------------------------------------------- delete

    async def _delete(self, change: Change) -> Outcome:
        platform = self.platform(change.platform)
        job_id = change.job_id or ""
        record = self.state.record_of(job_id)
        self.journal.write(
            "intent",
            service=change.service,
            job_id=job_id,
            action=DELETE,
            target=change.platform,
            orphan=change.orphan,
        )
        faults.point("delete-after-intent")
        try:
            if record is not None:
                # out of routing and drained first: a scale down or a delete fails no request
                await self.retirer.drain_and_stop(record, None, drain_timeout_of(record))
            else:  # an orphan: no gateway routes to a workload that is not in state
                await self._remove_orphan(change.service, platform, job_id)
        except TaoplanError as exc:
            self.journal.write(
                "outcome",
                service=change.service,
                job_id=job_id,
                action=DELETE,
                outcome="failed",
                message=exc.message,
            )
            self.reporter.done(change.service, False, exc.message)
            return Outcome(change.service, DELETE, False, exc.message, job_id)
        self.reporter.done(change.service, True, f"deleted {job_id}")
        return Outcome(change.service, DELETE, True, "deleted", job_id)

    async def _remove_orphan(self, service: str, platform: Platform, job_id: str) -> None:
        self.reporter.phase(service, f"deleting {job_id}")
        await self._run(platform.remove, job_id)
        self.journal.write("executed", service=service, job_id=job_id, action=DELETE)
        faults.point("delete-after-stop")
        await asyncio.to_thread(self.ws.registry.remove, job_id)
        self.journal.write("outcome", service=service, job_id=job_id, action=DELETE, outcome="deleted")

    # ----------------------------------------------------------------------------- create / replace / noop

    async def _converge(
        self, change: Change, want: Desired, placements: dict[str, tuple[Deployment, Placement]]
    ) -> Outcome:
        if change.action == NOOP:
            return await self._settle(change, want)
        if change.action == REPLACE or change.retire:
            # one replica of a service at a time (max surge 1; a recreate keeps the others serving)
            async with self._rolling.setdefault(want.service, asyncio.Lock()):
                halted = self._halted.get(want.service)
                if halted is not None:  # an earlier replica's rollout failed: keep the old ones
                    said = f"not rolled: {halted} (the old workload keeps serving)"
                    self.journal.write(
                        "outcome", service=change.service, action=change.action, outcome="skipped"
                    )
                    self.reporter.done(change.service, False, said)
                    return Outcome(change.service, change.action, False, said, change.job_id)
                outcome = await self._create(change, want, placements)
                if not outcome.ok:
                    self._halted[want.service] = f"the rollout of {change.service} failed"
                return outcome
        return await self._create(change, want, placements)

    async def _create(
        self, change: Change, want: Desired, placements: dict[str, tuple[Deployment, Placement]]
    ) -> Outcome:
        deployment, placement = placements[change.service]
        platform = self.platform(want.platform)
        old = self.state.services.get(change.service)
        cbd = change.action == REPLACE and change.create_before_destroy
        self.journal.write(
            "intent",
            service=change.service,
            job_id=deployment.job_id,
            action=change.action,
            target=want.platform,
            replaces=old.job_id if old else None,
            create_before_destroy=cbd,
            rollout="rolling" if cbd else "recreate",
        )
        faults.point("after-intent")

        if change.action == CREATE and old is not None:
            # the recorded workload is gone: drop its stale registry entry
            await asyncio.to_thread(self.ws.registry.remove, old.job_id)
        if change.action == REPLACE and old is not None and not cbd:
            await self.retirer.drain(old, None, want.spec.drain_timeout)  # other replicas take the traffic
            self.reporter.phase(change.service, f"stopping {old.job_id} (recreate)")
            await self._run(self.platform(old.platform).stop, old)
            self.journal.write("executed", service=change.service, job_id=old.job_id, action="stop-old")
            faults.point("after-stop-old")
            await asyncio.to_thread(self.ws.registry.remove, old.job_id)

        record = ServiceRecord(
            name=want.name,
            job_id=deployment.job_id,
            platform=want.platform,
            network_arch=want.spec.kind,
            spec=want.spec_dict,
            spec_hash=want.spec_hash,
            image=want.image,
            image_rule=want.image_rule,
            host_port=placement.host_port,
            status="creating",
            protect=want.spec.protect,
            extra={"platform_config": want.platform_config},
        )
        if cbd and old is not None:
            retiring = old

            def hand_over(state: State) -> None:
                """One write: the old workload keeps serving as retiring; the new one is recorded."""
                state.retiring[retiring.job_id] = retiring
                state.services[record.name] = record

            self._save(hand_over)
            self.journal.write("rollout", service=change.service, job_id=old.job_id, step="retiring")
        else:
            self._put(record)
        faults.point("after-record-creating")

        self.reporter.phase(change.service, "starting")
        clock = self._clocks[record.job_id] = phases.Clock()
        began = time.time()
        try:
            artifacts = platform.render(deployment, placement)
            record.artifact_hash = hashing.artifact_hash(a.content for a in artifacts)
            started = await self._run(platform.start, deployment, placement, artifacts)
        except TaoplanError as exc:
            return self._fail(change, record, exc.message, [])
        faults.point("after-start")
        for name, start, end in started.phases:
            clock.add(name, start, end)
        clock.begin(phases.CONTAINER_START, started.phases[-1][2] if started.phases else began, implicit=True)
        record.host_url = started.host_url
        record.host_port = started.host_port
        record.docker_url = started.docker_url
        record.platform_job_id = started.platform_job_id
        record.started_at = now()
        record.status = "starting"
        record.extra = {**record.extra, **dict(started.extra)}
        self.journal.write(
            "executed",
            service=change.service,
            job_id=deployment.job_id,
            action="start",
            host_url=started.host_url,
        )
        if record.host_url:  # else it is added once the endpoint exists (see _wait)
            await self._registry_add(record)
        faults.point("after-registry-add")
        self._put(record)

        result = await self._wait(change.service, platform, record, want.spec.readiness.timeout)
        if not result.ok:
            tail = self._log_tail(platform, record)
            await self._remove_failed(platform, record)
            return self._fail(change, record, f"{result.reason}: {result.message}", tail, result)
        clock.ready()

        answered = await self._smoke(change.service, want, platform, record)
        if answered is not None and not answered.ok:
            tail = self._log_tail(platform, record)
            await self._remove_failed(platform, record)
            return self._fail(change, record, f"smoke_failed: {answered.message}", tail)

        record.status = "ready"
        record.ready_at = now()
        record.readiness = "ready"
        record.extra = {**record.extra, "time_to_ready": round(result.elapsed, 3)}
        record.phases = clock.spans()
        faults.point("before-record-ready")
        self._put(record)
        self.journal.write(
            "outcome",
            service=change.service,
            job_id=record.job_id,
            action=change.action,
            outcome="ready",
            elapsed=round(result.elapsed, 3),
        )
        faults.point("rollout-after-ready")
        await self.retirer.retire(self.state, record.name, record, want.spec.drain_timeout)
        said = f"ready at {record.host_url}" + self._smoke_note(record)
        self.reporter.done(change.service, True, said)
        return Outcome(change.service, change.action, True, said, record.job_id)

    async def _settle(self, change: Change, want: Desired) -> Outcome:
        """A no-op that still updates state-only fields, or waits for a service that is starting."""
        record = self.state.services[change.service]
        if change.state_only:
            updated = record.model_copy(
                update={
                    "protect": want.spec.protect,
                    "spec": {
                        **record.spec,
                        "readiness": want.spec_dict["readiness"],
                        "protect": want.spec.protect,
                    },
                }
            )
            self._put(updated)
            record = updated
        if not change.await_ready:
            await self.retirer.retire(self.state, record.name, record, want.spec.drain_timeout)
            return Outcome(change.service, NOOP, True, "unchanged", record.job_id)
        platform = self.platform(want.platform)
        clock = self._clocks[record.job_id] = phases.Clock()
        clock.begin(phases.CONTAINER_START, implicit=True)
        result = await self._wait(change.service, platform, record, want.spec.readiness.timeout)
        if not result.ok:
            tail = self._log_tail(platform, record)
            return self._fail(change, record, f"{result.reason}: {result.message}", tail, result)
        clock.ready()
        answered = await self._smoke(change.service, want, platform, record)
        if answered is not None and not answered.ok:
            tail = self._log_tail(platform, record)
            return self._fail(change, record, f"smoke_failed: {answered.message}", tail)
        update = {"status": "ready", "readiness": "ready", "ready_at": now(), "phases": clock.spans()}
        ready = record.model_copy(update=update)
        self._put(ready)
        await self.retirer.retire(self.state, ready.name, ready, want.spec.drain_timeout)
        self.reporter.done(change.service, True, f"ready at {record.host_url}" + self._smoke_note(record))
        return Outcome(change.service, NOOP, True, "ready", record.job_id)

    async def _smoke(
        self, service: str, want: Desired, platform: Platform, record: ServiceRecord
    ) -> SmokeResult | None:
        """One small real request once readiness said 200 (readiness.smoke); None when skipped.
        Its round trip is the phase "first answer"."""
        clock = self._clocks.get(record.job_id) or phases.Clock()

        def phase(text: str) -> None:
            self.reporter.phase(service, text)
            clock.begin(phases.FIRST_ANSWER)

        try:
            return await smoke.check(want, platform, record, self.ws.refs.request, phase, self.on_smoke)
        finally:
            clock.close()

    @staticmethod
    def _smoke_note(record: ServiceRecord) -> str:
        said = str(record.extra.get("smoke") or "")
        return f" (smoke {said})" if said.startswith("skipped") else ""

    async def _wait(self, service: str, platform: Platform, record: ServiceRecord, timeout: float) -> Result:
        async def probe() -> Observation:
            return await asyncio.to_thread(platform.probe, record.job_id)

        async def endpoint() -> Endpoint:
            """Asked before every poll: a queued job has no endpoint yet, a dead tunnel is reopened."""
            found = await asyncio.to_thread(platform.endpoint, record)
            if found.updates:
                found.apply_to(record)
                self._save_record(record)
                if record.host_url:
                    await self._registry_add(record)
                # seen, so timed: a queued job's endpoint appears when it leaves the queue
                self._saw(service, record, found.detail or f"endpoint {found.url}")
            return found

        first = await endpoint()
        self.reporter.phase(
            service,
            f"waiting for readiness at {first.url}"
            if first.url
            else first.detail or "waiting for an endpoint",
        )
        return await wait_ready(
            endpoint,
            rules=payload.readiness_of(record.spec, self.ws.refs),
            timeout=timeout,
            probe=probe,
            on_phase=lambda phase: self._saw(service, record, phase),
        )

    async def _registry_add(self, record: ServiceRecord) -> None:
        if payload.in_registry(record.spec):
            await asyncio.to_thread(self.ws.registry.add, self.ws.registry_entry(record))

    def _saw(self, service: str, record: ServiceRecord, phase: str) -> None:
        self.reporter.phase(service, phase)
        clock = self._clocks.get(record.job_id)
        if clock is not None:
            clock.saw(phase)

    async def _remove_failed(self, platform: Platform, record: ServiceRecord) -> None:
        """A new workload that failed while an older one serves is removed (the rollout is undone)."""
        if not self.state.retiring_for(record.name):
            return  # nothing else serves: leave it for taoplan logs
        await self._run(platform.stop, record)
        await asyncio.to_thread(self.ws.registry.remove, record.job_id)
        self.journal.write("executed", service=record.name, job_id=record.job_id, action="stop-failed")

    def _fail(
        self,
        change: Change,
        record: ServiceRecord,
        message: str,
        tail: list[str],
        result: Result | None = None,
    ) -> Outcome:
        status = "exited" if result is not None and result.exited else "failed"
        clock = self._clocks.get(record.job_id)
        if clock is not None:
            clock.close()  # the phase it failed in ends now
        spans = clock.spans() if clock is not None else record.phases
        failed = record.model_copy(update={"status": status, "readiness": message, "phases": spans})
        self._save_record(failed)
        serving = self.state.retiring_for(record.name)
        kept = f" (removed; the old workload {serving[0].job_id[:8]} keeps serving)" if serving else ""
        self.journal.write(
            "outcome",
            service=change.service,
            job_id=record.job_id,
            action=change.action,
            outcome=status,
            message=message,
        )
        text = f"{message}{kept}"
        if tail:
            text += "\n    " + "\n    ".join(tail)
        self.reporter.done(change.service, False, message + kept)
        return Outcome(change.service, change.action, False, text, record.job_id)
