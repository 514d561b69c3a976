"""`taoplan stats` math: durations, percentiles, uptime and cost split by share of request time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from taoplan.errors import RequestError
from taoplan.traffic.stats import LiveJob, parse_duration, percentile, rows, summarize

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def rec(
    job: str, caller: str, at: float, latency: float, status: int | None = 200, **kw: Any
) -> dict[str, Any]:
    return {
        "time": (T0 + timedelta(seconds=at)).isoformat(),
        "service": kw.get("service", "svc"),
        "job_id": job,
        "platform": kw.get("platform", "local-docker"),
        "num_gpus": kw.get("num_gpus", 1),
        "started_at": T0.isoformat(),
        "caller": caller,
        "status": status,
        "latency_ms": latency,
        "wait_ms": 0,
    }


def test_parse_duration() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("0.5h") == 1800
    for bad in ("", "5", "5x", "h1", "1h 30m"):
        with pytest.raises(RequestError, match="expected a duration"):
            parse_duration(bad)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 100) == 100
    assert percentile([7.0], 95) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 50) is None


def test_cost_is_uptime_split_by_share_of_request_time() -> None:
    # a live job started at T0 with 2 GPUs, looked at 1 h later: 7200 GPU-seconds at 2.5/GPU-hour = 5.0
    records = [
        rec("j1", "alice", 10, 300, num_gpus=2),
        rec("j1", "alice", 20, 300, num_gpus=2),
        rec("j1", "bob", 30, 400, num_gpus=2),
        rec("j1", "bob", 40, 1000, status=500, num_gpus=2),
    ]
    live = {"j1": LiveJob("j1", "svc", "local-docker", 2, T0.isoformat())}
    [svc] = summarize(records, live=live, pricing={"local-docker": 2.5}, now=T0 + timedelta(hours=1))
    assert svc.total.requests == 4 and svc.total.errors == 1
    assert svc.total.gpu_seconds == pytest.approx(7200)
    assert svc.total.cost == pytest.approx(5.0)
    alice, bob = svc.callers["alice"], svc.callers["bob"]
    assert (alice.requests, alice.errors, bob.requests, bob.errors) == (2, 0, 2, 1)
    assert alice.cost == pytest.approx(5.0 * 600 / 2000)
    assert bob.cost == pytest.approx(5.0 * 1400 / 2000)
    assert percentile(bob.latencies, 50) == 400 and max(bob.latencies) == 1000
    table = rows([svc])
    assert [(r["service"], r["caller"], r["requests"]) for r in table] == [
        ("svc", "(all)", 4),
        ("svc", "alice", 2),
        ("svc", "bob", 2),
    ]
    assert table[0]["cost"] == "5.0000"


def test_apply_smoke_request_is_its_own_row_and_takes_no_share_of_cost() -> None:
    smoke = {**rec("j1", "taoplan-smoke", 5, 5000), "via": "smoke"}
    records = [smoke, rec("j1", "alice", 10, 300), rec("j1", "bob", 20, 100)]
    live = {"j1": LiveJob("j1", "svc", "local-docker", 1, T0.isoformat())}
    [svc] = summarize(records, live=live, pricing={"local-docker": 4.0}, now=T0 + timedelta(hours=1))
    assert svc.total.requests == 3 and svc.total.cost == pytest.approx(4.0)
    assert (svc.callers["taoplan-smoke"].requests, svc.callers["taoplan-smoke"].cost) == (1, 0.0)
    assert svc.callers["alice"].cost == pytest.approx(3.0) and svc.callers["bob"].cost == pytest.approx(1.0)
    assert sum(r.requests for r in svc.callers.values()) == svc.total.requests


def test_a_gone_job_is_charged_until_its_last_request_and_since_clips_uptime() -> None:
    records = [rec("old", "alice", 100, 1000), rec("old", "alice", 3599, 1000)]
    [svc] = summarize(records, live={}, pricing={"local-docker": 3.6}, now=T0 + timedelta(days=1))
    assert svc.total.gpu_seconds == pytest.approx(3600)  # started_at .. end of the last request
    assert svc.total.cost == pytest.approx(3.6)

    live = {"old": LiveJob("old", "svc", "local-docker", 1, T0.isoformat())}
    since = T0 + timedelta(seconds=3000)
    [svc] = summarize(records, live=live, pricing={}, now=T0 + timedelta(seconds=4000), since=since)
    assert svc.total.requests == 1  # the first request is before the window
    assert svc.total.gpu_seconds == pytest.approx(1000)  # only the part of the uptime inside the window
    assert svc.total.cost is None and not svc.priced  # no pricing for the platform: not priced, not zero


def test_services_are_grouped_and_idle_services_keep_unattributed_cost() -> None:
    records = [
        rec("j1", "alice", 10, 100, service="a"),
        rec("j2", "alice", 10, 100, service="a"),  # a replaced job of the same service
        rec("sk", "bob", 10, 0, service=None),  # a registry-only job: keyed by job id
    ]
    live = {
        "j2": LiveJob("j2", "a", "local-docker", 1, T0.isoformat()),
        "idle": LiveJob("idle", "quiet", "local-docker", 1, T0.isoformat()),
    }
    result = summarize(
        records, live=live, state_jobs=["j2", "idle"], pricing={}, now=T0 + timedelta(seconds=100)
    )
    by_name = {s.service: s for s in result}
    assert set(by_name) == {"a", "sk", "quiet"}
    assert sorted(by_name["a"].job_ids) == ["j1", "j2"] and by_name["a"].total.requests == 2
    assert by_name["quiet"].total.requests == 0
    assert by_name["quiet"].unattributed_gpu_seconds == pytest.approx(100)
    # zero request time: the share falls back to request counts
    assert by_name["sk"].callers["bob"].gpu_seconds == pytest.approx(by_name["sk"].total.gpu_seconds)
