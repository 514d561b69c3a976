"""Waiting for readiness: every 0.5 s, concurrently for many services, until ready, fatal or timed out.

What one reply means lives in ``platforms.common.health``, shared with status and the platforms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from taoplan.common import httpclients
from taoplan.platforms.base import Endpoint, Observation
from taoplan.platforms.common.health import (
    CONNECTING,
    FATAL,
    PROBE_INTERVAL,
    READY,
    WAIT,
    Verdict,
    verdict_of,
)
from taoplan.spec.references import ReadinessRefs


@dataclass(frozen=True)
class Result:
    ok: bool
    reason: str
    message: str
    elapsed: float
    exited: bool = False


async def wait_ready(
    url: str | Callable[[], Awaitable[Endpoint]],
    *,
    rules: ReadinessRefs,
    timeout: float,
    probe: Callable[[], Awaitable[Observation]],
    on_phase: Callable[[str], None],
    interval: float | None = None,
) -> Result:
    """Poll GET {url}{path} until ready, fatal, exited or timed out.

    ``url`` may be a function asked before every poll: an Endpoint without a url (a queued job, a pod
    not Ready yet) is waited for like a server that does not answer yet, its detail shown as the phase.
    """
    import httpx

    step = rules.poll_interval_seconds if interval is None else interval
    started = time.monotonic()
    last = ""
    probed_at = -PROBE_INTERVAL
    queued: str | None = None  # "pending: ..." while the platform holds the workload back
    target: str | None = None
    async with httpclients.async_client(timeout=httpx.Timeout(2.0)) as client:
        while True:
            elapsed = time.monotonic() - started
            found = Endpoint(url) if isinstance(url, str) else await url()
            if found.url is not None and target is None:
                queued = None  # an endpoint appeared: the platform no longer holds the workload back
            target = found.url
            try:
                if target is None:
                    verdict = Verdict(WAIT, found.detail or "no endpoint yet")
                else:
                    reply = await client.get(target.rstrip("/") + rules.path, headers=dict(found.headers))
                    verdict = verdict_of(reply, rules)
            except httpx.TransportError as exc:
                verdict = Verdict(WAIT, CONNECTING, type(exc).__name__)
            if verdict.kind == READY:
                return Result(True, READY, verdict.message, time.monotonic() - started)
            if verdict.kind == FATAL:
                return Result(False, verdict.reason, verdict.message, elapsed)
            phase = verdict.reason
            silent = target is None or verdict.reason == CONNECTING
            if silent and elapsed - probed_at >= PROBE_INTERVAL:
                # Only a server that does not answer can have a dead workload behind it, and asking
                # the platform (an inspect, a kubectl, an ssh) on every poll of ten starting
                # services takes CPU from the servers that are importing.
                probed_at = elapsed
                obs = await probe()
                if obs.status == "failed":
                    return Result(False, "failed", obs.detail, elapsed)
                if obs.status in ("exited", "missing"):
                    code = f" with code {obs.exit_code}" if obs.exit_code is not None else ""
                    what = "exited" if obs.status == "exited" else "disappeared"
                    return Result(False, obs.status, f"workload {what}{code}", elapsed, exited=True)
                queued = f"pending: {obs.detail}" if obs.status == "pending" else None
            if queued and silent:
                phase = queued
            if phase != last:
                on_phase(phase)
                last = phase
            if elapsed >= timeout:
                return Result(False, "timeout", f"not ready after {timeout:g}s (last: {phase})", elapsed)
            await asyncio.sleep(step)
