"""Waiting on the running gateways during a rollout (their reports: store/gateways.py).

- ``until_routed``: every gateway that sends traffic to an old workload also sends it to the new
  one, so taking the old one out of routing leaves callers a ready workload.
- ``until_drained``: every gateway has read the state that marks a workload draining, no longer
  routes to it and has no request in flight on it.

With no gateway running there is nothing to wait for. Both are bounded; on time-out they say what
was still outstanding, and the rollout goes on (the journal records it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from taoplan.store.gateways import Report, live_reports

POLL = 0.05


@dataclass(frozen=True)
class Waited:
    ok: bool
    seconds: float
    detail: str = ""  # what was still outstanding at the time-out


async def until_routed(state_dir: Path, new: str, olds: Collection[str], timeout: float) -> Waited:
    def outstanding(reports: list[Report]) -> str:
        behind = [r.pid for r in reports if (r.routed & set(olds)) and new not in r.routed]
        return f"gateway pid {', '.join(map(str, behind))} does not route {new[:8]} yet" if behind else ""

    return await _poll(state_dir, outstanding, timeout)


async def until_drained(state_dir: Path, job: str, serial: int, timeout: float) -> Waited:
    def outstanding(reports: list[Report]) -> str:
        parts = []
        for r in reports:
            if r.serial is None or r.serial < serial:
                parts.append(f"gateway pid {r.pid} has not read state serial {serial}")
            elif job in r.routed:
                parts.append(f"gateway pid {r.pid} still routes {job[:8]}")
            elif r.inflight.get(job, 0):
                parts.append(f"gateway pid {r.pid} has {r.inflight[job]} request(s) in flight on {job[:8]}")
        return "; ".join(parts)

    return await _poll(state_dir, outstanding, timeout)


async def _poll(state_dir: Path, outstanding: Callable[[list[Report]], str], timeout: float) -> Waited:
    began = time.monotonic()
    while True:
        reports = await asyncio.to_thread(live_reports, state_dir)
        left = outstanding(reports)
        elapsed = time.monotonic() - began
        if not left:
            return Waited(True, elapsed)
        if elapsed >= timeout:
            return Waited(False, elapsed, left)
        await asyncio.sleep(POLL)
