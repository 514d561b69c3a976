"""What the per-service page and the cost view read: the request store (on a read connection of
their own, so the gateway's key checks never wait behind a page), the platform's logs, and the
arch's request rules. Every function here blocks: the routes call them in a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Container
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from taoplan.traffic.dashboard.chart import minute_chart
from taoplan.traffic.log.rows import RequestRow, from_params, iso
from taoplan.traffic.log.store import rows_query
from taoplan.traffic.stats import percentile

if TYPE_CHECKING:
    from taoplan.spec.references import RequestRefs
    from taoplan.traffic.gateway.core import Gateway
    from taoplan.traffic.log.backend import Engine

HOUR = 3600
MINUTES = 60
LAST = 50
WINDOWS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
MAX_TAIL = 2000


class Reader:
    """A read connection to the request store, opened on first use; one query at a time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self._lock = threading.Lock()

    def rows(self, since: float | None, service: str | None = None) -> list[RequestRow]:
        sql, args = rows_query(since, service)
        with self._lock:
            for attempt in range(2):
                if self._conn is None:
                    self._conn = self.engine.connect()
                try:
                    return [from_params(r) for r in self._conn.execute(self.engine.sql(sql), args).fetchall()]
                except Exception:
                    if attempt or not self.engine.postgres:
                        raise
                    self._conn = None  # PostgreSQL dropped it: once more on a new connection
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def activity(rows: list[RequestRow], now: float) -> dict[str, Any]:
    """One service's last hour: requests per minute with p50/p95 latency, errors by type, the
    last ``LAST`` requests (time, caller, status, latency; never content)."""
    start = now - HOUR
    minutes: list[list[float]] = [[] for _ in range(MINUTES)]
    counts = [0] * MINUTES
    errors: Counter[str] = Counter()
    recent = [r for r in rows if r.time >= start]
    for row in recent:
        slot = min(MINUTES - 1, max(0, int((row.time - start) // 60)))
        counts[slot] += 1
        if row.status:  # 0: no HTTP answer, no latency to speak of (as in stats)
            minutes[slot].append(row.latency_ms)
        if row.status != 200:
            errors[row.error_type or (f"http_{row.status}" if row.status else "no_answer")] += 1
    p50 = [percentile(m, 50) for m in minutes]
    p95 = [percentile(m, 95) for m in minutes]
    latencies = [r.latency_ms for r in recent if r.status]
    return {
        "requests": len(recent),
        "errors": sum(errors.values()),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "per_minute": {"requests": counts, "p50_ms": p50, "p95_ms": p95},
        "errors_by_type": [{"type": k, "count": v} for k, v in errors.most_common()],
        "last": [
            {
                "time": iso(r.time),
                "caller": r.caller,
                "status": r.status,
                "latency_ms": r.latency_ms,
                "error_type": r.error_type,
            }
            for r in reversed(rows[-LAST:])
        ],
        "chart": minute_chart(counts, p50, p95),
    }


def service_activity(reader: Reader, name: str) -> dict[str, Any]:
    now = time.time()
    return activity(reader.rows(now - HOUR, name), now)


def logs_tail(gw: Gateway, name: str, tail: int) -> list[str]:
    """The last ``tail`` lines of the service's logs, read as `taoplan logs NAME --tail N` reads them."""
    from taoplan.engine.status import service_logs

    ws = gw.watcher.workspace
    assert ws is not None
    return list(service_logs(ws, ws.store.load(), name, tail, False))


def cost(gw: Gateway, reader: Reader, window: str, services: Container[str] | None) -> dict[str, Any]:
    """Cost and requests per caller and per end user over ``window`` (one of WINDOWS), computed as
    `taoplan stats --since WINDOW --by caller|end-user` computes them; ``services``: a key's scope
    (only those services' lines), None: every line, the same numbers as `taoplan stats`."""
    from taoplan.traffic.usage import live_jobs, report

    ws = gw.watcher.workspace
    assert ws is not None
    now = datetime.now(timezone.utc)
    since = now - timedelta(seconds=WINDOWS[window])
    rows = reader.rows(since.timestamp())
    state = ws.store.load()
    live = live_jobs(gw.file, gw.state_dir)
    pricing = dict(ws.config.pricing)
    out: dict[str, Any] = {"window": window, "now": now.isoformat(), "since": since.isoformat()}
    for by, key in (("caller", "callers"), ("end-user", "end_users")):
        result = report(
            rows, now=now, since=since, pricing=pricing, state_jobs=[r.job_id for r in state.records()], live=live, by=by,
            services=services,
        )  # fmt: skip
        out[key] = result.to_json()[key]
        # requests refused before routing (no service) have no uptime to price
        out["unpriced"] = sorted({s.platform for s in result.services if s.platform and not s.priced})
        out["services"] = sorted(s.service for s in result.services)
    return out


def chat_form(rules: RequestRefs, arch: str) -> dict[str, Any]:
    """The chat page's form for ``arch``: its sampling fields with defaults and ranges (the rules
    ``taoplan request`` applies), which media it takes, and what it answers."""
    spec = rules.archs.get(arch) or rules.server
    tao = arch in rules.archs
    if spec is None:
        return {"arch": arch, "tao": tao, "sampling": [], "media_kinds": [], "reply": "text"}
    return {
        "arch": arch,
        "tao": tao,
        "requires_media": spec.requires_media,
        "media_kinds": list(spec.media_kinds),
        "reply": spec.reply,
        "sampling": [
            {"name": name, "type": f.type, "default": f.default, "min": f.min, "max": f.max, "help": f.help}
            for name, f in spec.sampling.items()
        ],
    }
