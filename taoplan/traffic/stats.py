"""`taoplan stats`: request counts, latency percentiles and cost per service and per caller (pure).

Cost attribution: each job (one running instance of a service) costs
``uptime × num_gpus / 3600 × pricing.<platform>.gpu_hour``. Uptime runs from the job's
``started_at`` (clipped to --since) to now while the job still runs (it is in state or in the
registry), else to the end of its last logged request, the last moment the log knows it was up.
That cost is split among callers by their share of the job's request time (the sum of their
requests' latencies), so idle time is paid by whoever used the service, in proportion.
A running service without requests in the window keeps its cost unattributed.
Per-token prices (``pricing.<platform>.prompt_token`` / ``completion_token``), when given, add each
request's token cost (its row's ``cost``, else tokens x price) to whoever sent it.

The split is by caller (a key's name or the OS user) by default; ``group=end_user_group`` splits by
caller and end user instead, and ``by_group`` folds the per-service groups into one line per group.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from taoplan.errors import RequestError
from taoplan.traffic.request.routing import gpu_count

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """'90s', '15m', '1h30m', '7d' -> seconds."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise RequestError(f"--since {text!r}: expected a duration such as 30s, 15m, 2h, 1h30m or 7d")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LiveJob:
    """A job that still runs now (from state or the registry)."""

    job_id: str
    service: str | None
    platform: str | None
    num_gpus: int
    started_at: str | None


@dataclass
class Usage:
    """Counts and latencies of a group of requests."""

    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    request_ms: float = 0.0
    gpu_seconds: float = 0.0
    cost: float | None = None
    token_cost: float = 0.0

    @property
    def total_cost(self) -> float | None:
        """Attributed uptime cost plus token cost; None when nothing of it is priced."""
        if self.cost is None and not self.token_cost:
            return None
        return (self.cost or 0.0) + self.token_cost

    def merge(self, other: Usage) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.latencies += other.latencies
        self.request_ms += other.request_ms
        self.token_cost += other.token_cost
        self.add_cost(other.gpu_seconds, other.cost)

    def add(self, record: Mapping[str, Any]) -> None:
        self.requests += 1
        token_cost = record.get("token_cost")
        if isinstance(token_cost, (int, float)):
            self.token_cost += float(token_cost)
        if record.get("status") != 200:
            self.errors += 1
        latency = record.get("latency_ms")
        if isinstance(latency, (int, float)):
            self.request_ms += float(latency)
            if record.get("status") is not None:
                self.latencies.append(float(latency))

    def add_cost(self, gpu_seconds: float, cost: float | None) -> None:
        self.gpu_seconds += gpu_seconds
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost

    def latency(self) -> tuple[float | None, float | None, float | None]:
        """p50, p95 and max latency in ms, for the JSON and the table alike."""
        return (
            percentile(self.latencies, 50),
            percentile(self.latencies, 95),
            max(self.latencies, default=None),
        )

    def to_json(self) -> dict[str, Any]:
        p50, p95, top = self.latency()
        return {
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": _round(p50),
            "p95_ms": _round(p95),
            "max_ms": _round(top),
            "request_ms": _round(self.request_ms),
            "gpu_seconds": _round(self.gpu_seconds),
            "cost": None if self.total_cost is None else round(self.total_cost, 6),
            "token_cost": round(self.token_cost, 6),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class ServiceStats:
    service: str
    platform: str | None
    job_ids: list[str] = field(default_factory=list)
    total: Usage = field(default_factory=Usage)
    callers: dict[str, Usage] = field(default_factory=dict)
    unattributed_gpu_seconds: float = 0.0
    priced: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "platform": self.platform,
            "job_ids": self.job_ids,
            **self.total.to_json(),
            "unattributed_gpu_seconds": _round(self.unattributed_gpu_seconds),
            "priced": self.priced,
            "callers": [
                {"caller": name, **usage.to_json(), "share": _share(usage, self.total)}
                for name, usage in sorted(self.callers.items())
            ],
        }


def _share(part: Usage, whole: Usage) -> float | None:
    return round(part.gpu_seconds / whole.gpu_seconds, 6) if whole.gpu_seconds else None


@dataclass
class _Job:
    job_id: str
    service: str
    platform: str | None
    num_gpus: int
    started_at: datetime | None
    records: list[Mapping[str, Any]] = field(default_factory=list)


def caller_group(record: Mapping[str, Any]) -> str:
    return str(record.get("caller") or "?")


SEP = "\x1f"


def end_user_group(record: Mapping[str, Any]) -> str:
    """Caller and end user in one group key (see split_group)."""
    return f"{record.get('caller') or '?'}{SEP}{record.get('end_user') or '-'}"


def split_group(key: str) -> tuple[str, str]:
    caller, _, end_user = key.partition(SEP)
    return caller, end_user


def _key(record: Mapping[str, Any]) -> str:
    return str(record.get("service") or record.get("job_id") or "?")


def _request_end(record: Mapping[str, Any]) -> datetime | None:
    start = parse_time(record.get("time"))
    if start is None:
        return None
    spent = float(record.get("wait_ms") or 0) + float(record.get("latency_ms") or 0)
    return start + timedelta(milliseconds=spent)


def _jobs(
    records: Iterable[Mapping[str, Any]], live: Mapping[str, LiveJob], state_jobs: Iterable[str]
) -> list[_Job]:
    jobs: dict[str, _Job] = {}
    for record in records:
        job_id = str(record.get("job_id") or "?")
        if job_id not in jobs:
            jobs[job_id] = _Job(
                job_id,
                _key(record),
                record.get("platform"),
                gpu_count(record.get("num_gpus")),
                parse_time(record.get("started_at")),
            )
        jobs[job_id].records.append(record)
    for job_id in state_jobs:
        if job_id not in jobs and job_id in live:
            idle = live[job_id]
            jobs[job_id] = _Job(
                job_id, idle.service or job_id, idle.platform, idle.num_gpus, parse_time(idle.started_at)
            )
    for job in jobs.values():
        info = live.get(job.job_id)
        if info is not None and info.started_at:
            job.started_at = parse_time(info.started_at) or job.started_at
    return list(jobs.values())


def _uptime(job: _Job, live: bool, now: datetime, since: datetime | None) -> float:
    times = [t for t in (parse_time(r.get("time")) for r in job.records) if t is not None]
    start = job.started_at or (min(times) if times else None)
    if start is None:
        return 0.0
    if live:
        end = now
    else:
        ends = [e for e in (_request_end(r) for r in job.records) if e is not None]
        end = max(ends) if ends else start
    if since is not None:
        start = max(start, since)
    return max(0.0, (end - start).total_seconds())


def summarize(
    records: Iterable[Mapping[str, Any]],
    *,
    live: Mapping[str, LiveJob],
    state_jobs: Iterable[str] = (),
    pricing: Mapping[str, float],
    now: datetime,
    since: datetime | None = None,
    group: Callable[[Mapping[str, Any]], str] = caller_group,
) -> list[ServiceStats]:
    """Per service, then per caller (or ``group``): counts, latencies, GPU-seconds, attributed cost."""
    window = [
        r for r in records if since is None or ((t := parse_time(r.get("time"))) is not None and t >= since)
    ]
    services: dict[str, ServiceStats] = {}
    for job in _jobs(window, live, state_jobs):
        stats = services.setdefault(job.service, ServiceStats(job.service, job.platform))
        stats.job_ids.append(job.job_id)
        gpu_seconds = _uptime(job, job.job_id in live, now, since) * job.num_gpus
        price = pricing.get(job.platform or "")
        stats.priced = stats.priced and price is not None
        cost = None if price is None else gpu_seconds / 3600 * price
        stats.total.add_cost(gpu_seconds, cost)
        callers: dict[str, Usage] = defaultdict(Usage)
        smoke: dict[str, Usage] = defaultdict(Usage)  # apply's smoke requests: shown, never a share of cost
        for record in job.records:
            stats.total.add(record)
            (smoke if record.get("via") == "smoke" else callers)[group(record)].add(record)
        total_ms = sum(u.request_ms for u in callers.values())
        total_n = sum(u.requests for u in callers.values())
        if not callers:
            stats.unattributed_gpu_seconds += gpu_seconds
        for name, usage in callers.items():
            share = usage.request_ms / total_ms if total_ms > 0 else usage.requests / total_n
            merged = stats.callers.setdefault(name, Usage())
            usage.add_cost(gpu_seconds * share, None if cost is None else cost * share)
            merged.merge(usage)
        for name, usage in smoke.items():
            usage.add_cost(0.0, None if cost is None else 0.0)
            stats.callers.setdefault(name, Usage()).merge(usage)
    return sorted(services.values(), key=lambda s: s.service)


def by_group(stats: Sequence[ServiceStats]) -> dict[str, Usage]:
    """One Usage per caller (or group) across every service."""
    out: dict[str, Usage] = {}
    for service in stats:
        for name, usage in service.callers.items():
            out.setdefault(name, Usage()).merge(usage)
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------------ text


COLUMNS = ("service", "caller", "requests", "errors", "p50_ms", "p95_ms", "max_ms", "gpu_s", "cost")


def rows(stats: Sequence[ServiceStats]) -> list[dict[str, Any]]:
    out = []
    for service in stats:
        out.append(_row(service.service, "(all)", service.total))
        out += [_row(service.service, name, usage) for name, usage in sorted(service.callers.items())]
    return out


def _row(service: str, caller: str, usage: Usage) -> dict[str, Any]:
    def ms(value: float | None) -> str | None:
        return None if value is None else f"{value:.1f}"

    p50, p95, top = usage.latency()
    return {
        "service": service,
        "caller": caller,
        "requests": usage.requests,
        "errors": usage.errors,
        "p50_ms": ms(p50),
        "p95_ms": ms(p95),
        "max_ms": ms(top),
        "gpu_s": f"{usage.gpu_seconds:.1f}",
        "cost": None if usage.total_cost is None else f"{usage.total_cost:.4f}",
    }


GROUP_COLUMNS = {
    "caller": ("caller", "requests", "errors", "p50_ms", "p95_ms", "max_ms", "gpu_s", "cost"),
    "end-user": ("caller", "end_user", "requests", "errors", "p50_ms", "p95_ms", "max_ms", "gpu_s", "cost"),
}


def group_rows(groups: Mapping[str, Usage], by: str) -> list[dict[str, Any]]:
    """Table rows of ``by_group``'s result, by caller or by caller and end user."""
    out = []
    for key, usage in groups.items():
        row = _row("", key, usage)
        del row["service"]
        if by == "end-user":
            row["caller"], row["end_user"] = split_group(key)
        out.append(row)
    return out
