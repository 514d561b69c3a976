"""What a rollout waits for, read from the gateways' report files: the new workload routed by every
gateway that routes the old one, then the old one out of routing with nothing in flight. A report
of a dead process or a stale one holds nothing back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

from taoplan.engine.drain import until_drained, until_routed
from taoplan.store.gateways import Report, live_reports, report_path, write_report


def report(state_dir: Path, pid: int, serial: int, routed: set[str], inflight: dict[str, int]) -> None:
    write_report(state_dir, Report(pid, serial, frozenset(routed), inflight, time.time()))


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_no_gateway_means_nothing_to_wait_for(tmp_path: Path) -> None:
    assert asyncio.run(until_routed(tmp_path, "new", ["old"], timeout=5)).ok
    assert asyncio.run(until_drained(tmp_path, "old", 3, timeout=5)).ok


def test_routed_waits_for_the_gateway_that_routes_the_old_workload(tmp_path: Path) -> None:
    report(tmp_path, os.getpid(), 7, {"old"}, {})

    async def later() -> None:
        await asyncio.sleep(0.3)
        report(tmp_path, os.getpid(), 8, {"old", "new"}, {})

    async def main() -> float:
        waited, _ = await asyncio.gather(until_routed(tmp_path, "new", ["old"], timeout=10), later())
        assert waited.ok
        return waited.seconds

    assert asyncio.run(main()) >= 0.3


def test_drained_needs_the_serial_no_route_and_nothing_in_flight(tmp_path: Path) -> None:
    report(tmp_path, os.getpid(), 8, {"new"}, {"old": 2})  # read serial 8, still 2 in flight
    waited = asyncio.run(until_drained(tmp_path, "old", 8, timeout=0.2))
    assert not waited.ok and "has 2 request(s) in flight on old" in waited.detail
    report(tmp_path, os.getpid(), 7, {"new"}, {})  # has not read the draining state yet
    waited = asyncio.run(until_drained(tmp_path, "old", 8, timeout=0.2))
    assert not waited.ok and "has not read state serial 8" in waited.detail
    report(tmp_path, os.getpid(), 8, {"new", "old"}, {})
    assert "still routes old" in asyncio.run(until_drained(tmp_path, "old", 8, timeout=0.2)).detail
    report(tmp_path, os.getpid(), 9, {"new"}, {"new": 5})
    assert asyncio.run(until_drained(tmp_path, "old", 8, timeout=0.2)).ok


def test_reports_of_dead_or_silent_gateways_are_ignored(tmp_path: Path) -> None:
    report(tmp_path, dead_pid(), 1, {"old"}, {"old": 3})  # killed with -9: its file stays
    stale = Report(os.getpid(), 1, frozenset({"old"}), {"old": 3}, time.time() - 60)
    write_report(tmp_path, stale)
    assert live_reports(tmp_path) == []
    assert asyncio.run(until_drained(tmp_path, "old", 5, timeout=1)).ok


def test_a_report_is_small_json_without_zero_counts(tmp_path: Path) -> None:
    report(tmp_path, os.getpid(), 4, {"b", "a"}, {"a": 1, "b": 0})
    data = json.loads(report_path(tmp_path).read_text())
    assert data["routed"] == ["a", "b"] and data["inflight"] == {"a": 1} and data["serial"] == 4
    assert oct(report_path(tmp_path).stat().st_mode & 0o777) == "0o600"
