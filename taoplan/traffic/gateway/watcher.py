"""Following what runs: state.json (and the services file) polled for changes, and every service's
readiness endpoint polled on the readiness contract (references/request.yaml ``readiness``).

- A workload that apply adds, replaces or removes is in (or out of) the table within one state poll
  (``STATE_POLL``) plus the time to find its endpoint; its readiness is probed at once. One that a
  rollout moves to ``retiring`` or marks draining keeps its entry and its readiness (by job id).
- Each service is probed every ``poll_interval_seconds`` (0.5 s) with a probe that gives up after
  ``PROBE_TIMEOUT``; a ready service that does not answer is probed once more at once, so it leaves
  routing within about 1 s, but not for one dropped connection. A reply is judged by
  ``platforms.common.health.classify``, as apply and status judge it.
- Endpoints come from the platform (``Workspace.endpoint``: a Slurm tunnel or a Kubernetes
  port-forward is reopened when it died); a service that does not answer for ``REOPEN_AFTER``
  seconds has its endpoint asked for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taoplan.errors import TaoplanError
from taoplan.platforms.common.health import CONNECTING, WAIT, Verdict, classify
from taoplan.traffic.gateway.table import Service, Table, file_stamp

if TYPE_CHECKING:
    from taoplan.engine.workspace import Workspace
    from taoplan.spec.references import ReadinessRefs
    from taoplan.store.state import State
    from taoplan.traffic.gateway.metrics import Metrics
    from taoplan.traffic.request.routing import Target

STATE_POLL = 0.25
PROBE_TIMEOUT = 0.45
REOPEN_AFTER = 3.0


def warn(message: str) -> None:
    print(f"taoplan gateway: {message}", file=sys.stderr, flush=True)


class Watcher:
    """Keeps ``table`` equal to what state says runs, and each service's readiness current."""

    def __init__(
        self,
        table: Table,
        file: Path,
        state_dir: str | None,
        rules: ReadinessRefs,
        metrics: Metrics,
        session: Any,  # aiohttp.ClientSession
    ) -> None:
        self.table = table
        self.file = file
        self.state_dir = state_dir
        self.rules = rules
        self.metrics = metrics
        self.session = session
        self.workspace: Workspace | None = None
        self.file_stamp: tuple[int, int, int] | None = None
        self.probes: dict[str, asyncio.Task[None]] = {}
        self.interval = max(0.05, float(rules.poll_interval_seconds))
        self._stopping = False

    # ----------------------------------------------------------------------------- state

    def open_workspace(self) -> Workspace:
        from taoplan.engine.workspace import Workspace

        self.file_stamp = file_stamp(self.file)
        self.workspace = Workspace.open(self.file, self.state_dir)
        return self.workspace

    async def start(self) -> None:
        """The first load (errors propagate: the gateway does not start on a broken file)."""
        await self.refresh(initial=True)

    async def run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(STATE_POLL)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the gateway keeps serving what it knows
                warn(f"cannot follow the state: {_short(exc)}")

    async def refresh(self, initial: bool = False) -> None:
        stamp = file_stamp(self.file)
        if self.workspace is None or stamp != self.file_stamp:
            try:
                self.open_workspace()
            except TaoplanError as exc:
                if initial or self.workspace is None:
                    raise
                self.file_stamp = stamp
                warn(f"{self.file} changed but cannot be read; keeping the last good one: {exc.message}")
            else:
                self.table.stamp = None  # prices or platform settings may have changed: look again
        ws = self.workspace
        assert ws is not None
        stamp = file_stamp(ws.store.path)
        if stamp == self.table.stamp and not initial:
            return
        state = ws.store.load()
        self.table.stamp = stamp
        changed, updated, gone = self.table.diff(state)
        for job_id in gone:
            self.drop(job_id)
        for target in updated:  # draining, retiring, a field that does not move it: same readiness
            self.update(target)
        for target in changed:  # a workload that moved keeps serving where it was until it is placed
            if target.job_id in self.table.services:
                self.update(target)
        # what the table routes away from now reflects this state; new workloads join once placed
        # (they are not routable before their first probe anyway)
        self.table.serial = state.serial
        if changed:
            found = await asyncio.gather(*(self.place(ws, state, t) for t in changed))
            for service in found:
                self.add(service)
        for service in self.table.services.values():
            service.gpu_hour = _gpu_hour(ws, service.target.platform)
            self.metrics.set_ready(service)

    async def place(self, ws: Workspace, state: State, target: Target) -> Service:
        url, detail, headers = await asyncio.to_thread(_endpoint, ws, state, target)
        service = Service(target, url, detail, gpu_hour=_gpu_hour(ws, target.platform), headers=headers)
        record = state.record_of(target.job_id)
        if record is not None and target.served_name is not None:
            from taoplan.spec.payload import readiness_of

            service.readiness = readiness_of(record.spec, ws.refs)  # the server type's own contract
        return service

    def add(self, service: Service) -> None:
        self.table.add(service)
        self.metrics.set_ready(service)
        task = self.probes.pop(service.job_id, None)
        if task is not None:
            task.cancel()
        self.probes[service.job_id] = asyncio.ensure_future(self.probe_loop(service))

    def update(self, target: Target) -> None:
        found = self.table.update(target)
        if found is not None:
            self.metrics.set_ready(found)

    def drop(self, job_id: str) -> None:
        self.table.drop(job_id)
        task = self.probes.pop(job_id, None)
        if task is not None:
            task.cancel()
        self.metrics.forget(job_id)

    # ----------------------------------------------------------------------------- readiness

    async def probe_loop(self, service: Service) -> None:
        last_reopen = time.monotonic()
        while not self._stopping and self.table.services.get(service.job_id) is service:
            started = time.monotonic()
            if service.url is not None:
                verdict = await self.probe(service.url, service.headers, service.readiness)
                if verdict.reason == CONNECTING and service.ready:
                    # once more at once, on a new connection: a ready service leaves routing when
                    # it does not answer twice (still within about 1 s), not for one dropped connection
                    verdict = await self.probe(service.url, service.headers, service.readiness)
                if service.set_verdict(verdict):
                    self.metrics.set_ready(service)
            stuck = service.url is None or (
                service.verdict.reason == CONNECTING and time.monotonic() - service.since > REOPEN_AFTER
            )
            if stuck and time.monotonic() - last_reopen > REOPEN_AFTER and self.workspace is not None:
                last_reopen = time.monotonic()
                await self.reopen(service)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def probe(self, url: str, headers: dict[str, str], rules: ReadinessRefs | None = None) -> Verdict:
        import aiohttp

        rules = rules or self.rules
        try:
            timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
            target = url.rstrip("/") + rules.path
            async with self.session.get(target, timeout=timeout, headers=headers) as reply:
                raw = await reply.read()
                status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            return Verdict(WAIT, CONNECTING, type(exc).__name__)
        from taoplan.traffic.gateway.wire import JSONError, loads

        try:
            body = loads(raw) if raw else None
        except JSONError:
            body = None
        return classify(status, body, rules)

    async def reopen(self, service: Service) -> None:
        """Ask the platform for the endpoint again (it reopens a dead tunnel or port-forward)."""
        ws = self.workspace
        assert ws is not None
        try:
            state = await asyncio.to_thread(ws.store.load)
        except TaoplanError:
            return
        url, detail, headers = await asyncio.to_thread(_endpoint, ws, state, service.target)
        if url != service.url or detail != service.detail or headers != service.headers:
            service.url, service.detail, service.headers = url, detail, headers
            service.since = time.monotonic()
            self.metrics.set_ready(service)

    def mark_unready(self, service: Service, verdict: Verdict) -> None:
        """What a chat reply said about readiness (202/503 not ready): routing leaves it at once."""
        if service.set_verdict(verdict):
            self.metrics.set_ready(service)

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self.probes.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _endpoint(ws: Workspace, state: State, target: Target) -> tuple[str | None, str, dict[str, str]]:
    """(url, detail, headers): the platform's endpoint for a state service (with the headers every
    request to it needs, e.g. a Lepton token); its recorded host_url otherwise."""
    from taoplan import platforms

    record = state.record_of(target.job_id)
    try:
        if record is not None and platforms.is_available(record.platform):
            found = ws.endpoint(state, record)
            url = str(found.url) if found.url else None
            return url, str(found.detail or ""), dict(getattr(found, "headers", {}) or {})
    except TaoplanError as exc:
        return None, exc.message, {}
    except Exception as exc:  # noqa: BLE001 - a platform library failing is "no endpoint now"
        return None, _short(exc), {}
    if target.host_url:
        return target.host_url, "", {}
    return None, "no endpoint recorded (is it started?)", {}


def _gpu_hour(ws: Workspace, platform: str | None) -> float | None:
    price = ws.config.pricing.get(platform or "")
    return None if price is None else float(price.gpu_hour)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
