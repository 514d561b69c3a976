"""What this gateway tells a rollout (``taoplan.store.gateways``): the serial of the state its table
reflects, the workloads a request may go to now, and its requests in flight per workload.

Apply reads the reports to know when a new workload takes traffic and when an old one, marked
draining, has no request left (engine side). The report is rewritten when any of the three changes
(looked at every ``PERIOD``; the file is written in a worker thread, so the loop never waits on the
disk) and at least every ``HEARTBEAT`` seconds, and removed on a clean stop: a gateway killed with
-9 leaves a report that goes stale and is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from taoplan.store.gateways import HEARTBEAT, Report, remove_report, write_report

if TYPE_CHECKING:
    from taoplan.traffic.gateway.table import Table

PERIOD = 0.05  # how often the table is looked at: a change is in the file within about this

Snapshot = tuple[int | None, frozenset[str], tuple[tuple[str, int], ...]]


def snapshot(table: Table) -> Snapshot:
    """(serial, routed job ids, nonzero in-flight counts): what a report says, comparable."""
    return table.serial, table.routed(), tuple(sorted(table.inflight.items()))


class Reporter:
    """Keeps this process's report in ``state_dir`` equal to what ``table`` routes."""

    def __init__(
        self,
        table: Table,
        state_dir: Path,
        warn: Callable[[str], None] | None = None,
        pid: int | None = None,
    ) -> None:
        self.table = table
        self.state_dir = state_dir
        self.pid = pid or os.getpid()
        self.warn = warn
        self.last: Snapshot | None = None
        self.written = 0.0  # time.monotonic() of the last write
        self.writes = 0
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(PERIOD)

    async def tick(self) -> bool:
        """Write the report if it changed or its heartbeat is due; True when it was written."""
        snap = snapshot(self.table)
        now = time.monotonic()
        if snap == self.last and now - self.written < HEARTBEAT - PERIOD:
            return False
        serial, routed, inflight = snap
        report = Report(self.pid, serial, routed, dict(inflight), time.time())
        try:
            await asyncio.to_thread(write_report, self.state_dir, report)
        except OSError as exc:
            if not self._failing and self.warn is not None:
                self.warn(
                    f"cannot write its report for rollouts in {self.state_dir} (they will not wait for it): {exc}"
                )
            self._failing = True
            return False
        self._failing = False
        self.last, self.written = snap, now
        self.writes += 1
        return True

    async def stop(self) -> None:
        """Stop writing and remove the report (a clean stop: nothing in flight any more)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        remove_report(self.state_dir, self.pid)
