"""What a caller has spent, for key budgets: the cost model of `taoplan stats`, in SQL aggregates.

Per job the caller used: GPU-seconds of uptime (from the job's started_at to now while it runs,
else to the end of its last logged request) x gpu_hour / 3600, times the caller's share of the
job's request time; plus the per-token cost of the caller's rows (their ``cost``, else tokens x
the platform's prompt_token / completion_token prices).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taoplan.spec.config import Pricing
    from taoplan.traffic.log.store import RequestStore

_JOBS = """
SELECT job_id, max(platform), max(num_gpus), min(started_at), min(time),
       max(time + (wait_ms + latency_ms) / 1000.0), sum(latency_ms), count(*),
       sum(CASE WHEN caller = ? THEN latency_ms ELSE 0 END), sum(CASE WHEN caller = ? THEN 1 ELSE 0 END)
FROM requests WHERE job_id IN (SELECT DISTINCT job_id FROM requests WHERE caller = ?) AND via != 'smoke'
GROUP BY job_id
"""
_TOKENS = """
SELECT platform, sum(cost), sum(CASE WHEN cost IS NULL THEN prompt_tokens END),
       sum(CASE WHEN cost IS NULL THEN completion_tokens END)
FROM requests WHERE caller = ? GROUP BY platform
"""


def token_price(pricing: Mapping[str, Pricing], platform: str | None, prompt: Any, completion: Any) -> float:
    price = pricing.get(platform or "")
    if price is None:
        return 0.0
    return float(prompt or 0) * (price.prompt_token or 0.0) + float(completion or 0) * (
        price.completion_token or 0.0
    )


def caller_cost(store: RequestStore, caller: str, now: float | None = None) -> float:
    from taoplan.traffic.request.routing import gpu_count
    from taoplan.traffic.stats import parse_time

    now = time.time() if now is None else now
    live = store.live() if store.live is not None else {}
    pricing = store.pricing
    store.flush()
    total = 0.0
    for row in store.query(_JOBS, (caller, caller, caller)):
        job_id, platform, gpus, started, first, last_end, all_ms, all_n, mine_ms, mine_n = row
        price = pricing.get(platform or "")
        if price is None:
            continue
        info = live.get(job_id)
        start_dt = parse_time(info.started_at if info is not None and info.started_at else None)
        start_dt = start_dt or parse_time(started)
        start = start_dt.timestamp() if start_dt is not None else float(first)
        end = now if info is not None else float(last_end)
        gpus = info.num_gpus if info is not None else gpu_count(gpus)
        gpu_seconds = max(0.0, end - start) * gpus
        share = float(mine_ms) / float(all_ms) if all_ms else float(mine_n) / float(all_n)
        total += gpu_seconds / 3600 * price.gpu_hour * share
    for platform, cost, prompt, completion in store.query(_TOKENS, (caller,)):
        total += float(cost or 0.0) + token_price(pricing, platform, prompt, completion)
    return total


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
