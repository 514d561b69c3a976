"""What each running gateway reports in the state directory: the state serial it has read, the
workloads it routes to and its requests in flight per workload.

A rollout reads these to know when a new workload takes traffic and when an old one has drained
(engine/drain.py). One small JSON file per gateway process, rewritten atomically on change and at
least every ``HEARTBEAT`` seconds; a report older than ``STALE_AFTER`` or of a dead process is
ignored, so a gateway killed with -9 never holds a rollout back.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from taoplan.common import fsutil, procs

REPORT_DIR = "gateways"
HEARTBEAT = 1.0
STALE_AFTER = 5.0


@dataclass(frozen=True)
class Report:
    pid: int
    serial: int | None  # the state serial the gateway's routing table was built from
    routed: frozenset[str] = frozenset()  # job ids a request may go to now (ready, not draining)
    inflight: Mapping[str, int] = field(default_factory=dict)  # job id -> requests not yet answered
    at: float = 0.0  # time.time() of the write

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "serial": self.serial,
                "routed": sorted(self.routed),
                "inflight": {k: v for k, v in sorted(self.inflight.items()) if v},
                "at": self.at,
            }
        )


def report_path(state_dir: Path, pid: int | None = None) -> Path:
    return state_dir / REPORT_DIR / f"{pid or os.getpid()}.json"


def write_report(state_dir: Path, report: Report) -> None:
    """Atomic and unsynced: a report is worth nothing after a crash, so it skips the fsync."""
    fsutil.ensure_private_dir(state_dir / REPORT_DIR)
    fsutil.atomic_write(report_path(state_dir, report.pid), report.to_json(), sync=False)


def remove_report(state_dir: Path, pid: int | None = None) -> None:
    with contextlib.suppress(OSError):
        os.unlink(report_path(state_dir, pid))


def live_reports(state_dir: Path, now: float | None = None) -> list[Report]:
    """Reports of gateways that are running now (fresh, and their process exists)."""
    now = time.time() if now is None else now
    out = []
    try:
        paths = sorted((state_dir / REPORT_DIR).glob("*.json"))
    except OSError:
        return []
    for path in paths:
        report = _read(path)
        if report is None or now - report.at > STALE_AFTER or not procs.alive(report.pid):
            continue
        out.append(report)
    return out


def _read(path: Path) -> Report | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Report(
            pid=int(raw["pid"]),
            serial=raw.get("serial") if isinstance(raw.get("serial"), int) else None,
            routed=frozenset(str(j) for j in raw.get("routed", [])),
            inflight={str(k): int(v) for k, v in dict(raw.get("inflight", {})).items()},
            at=float(raw.get("at", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # being replaced, or not ours: a report is advisory
