"""Readiness: what a readiness reply means (pure), and waiting for it (async, every 0.5 s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from taoplan import httpclients
from taoplan.platforms.base import Endpoint, Observation
from taoplan.references import ReadinessRefs

READY, WAIT, FATAL = "ready", "wait", "fatal"


@dataclass(frozen=True)
class Verdict:
    kind: str  # ready | wait | fatal
    reason: str
    message: str = ""


def classify(status: int, body: Any, rules: ReadinessRefs) -> Verdict:
    """One readiness reply -> ready / wait / fatal. Understands the server's `reason` and the skill's `error.type`."""
    reason, message = "", ""
    if isinstance(body, dict):
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or "")
        error = body.get("error")
        if isinstance(error, dict):
            reason = reason or str(error.get("type") or "")
            message = message or str(error.get("message") or "")
        if not reason and isinstance(body.get("status"), str) and status != rules.ready_status:
            reason = body["status"]
    if status == rules.ready_status:
        return Verdict(READY, "ready", message)
    if reason in rules.fatal_reasons:
        return Verdict(FATAL, reason, message)
    if status in rules.wait_statuses or reason in rules.wait_reasons:
        return Verdict(WAIT, reason or f"HTTP {status}", message)
    return Verdict(WAIT, reason or f"HTTP {status}", message)


CONNECTING = "connecting"
#: While a server does not answer, ask its platform whether the workload is still alive this often.
PROBE_INTERVAL = 1.5


def _verdict_of(response: Any, rules: ReadinessRefs) -> Verdict:
    try:
        body = response.json()
    except ValueError:
        body = None
    return classify(response.status_code, body, rules)


def check(url: str, rules: ReadinessRefs, timeout: float = 2.0) -> Verdict:
    """One readiness request (for status and platforms); a server that does not answer is CONNECTING."""
    import httpx

    try:
        with httpclients.client(timeout=timeout) as http:
            response = http.get(url.rstrip("/") + rules.path)
    except httpx.HTTPError as exc:
        return Verdict(WAIT, CONNECTING, type(exc).__name__)
    return _verdict_of(response, rules)


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
    async with httpclients.async_client(timeout=httpx.Timeout(2.0)) as client:
        while True:
            elapsed = time.monotonic() - started
            found = Endpoint(url) if isinstance(url, str) else await url()
            target = found.url
            try:
                if target is None:
                    verdict = Verdict(WAIT, found.detail or "no endpoint yet")
                else:
                    verdict = _verdict_of(await client.get(target.rstrip("/") + rules.path), rules)
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
