"""``GET /metrics``: Prometheus text, rendered by prometheus-client from the gateway's own tallies.

The request path only adds to plain counters and bucket arrays (a few microseconds; the gateway
serves from one event loop, so no locks); a custom collector turns them into metric families when
scraped. prometheus-client's own Counter/Histogram cost about 40 us per request here.

Labels are bounded: ``service`` is a service of the table (anything else is ``-``), ``caller`` is a
key name or the OS user (``-`` before authentication), ``status`` an HTTP status. Key values never
appear; nor do end users (unbounded), which are in the request log instead. A service's workloads
(replicas, and a rollout's retiring ones) have their own ``taoplan_gateway_replica_*`` series,
labelled by ``service`` too (so that dashboards sum them by service), ``replica`` (the instance key)
and ``job_id``; a workload's series go when it leaves the table.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from taoplan.traffic.gateway.table import Service

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_LE = [str(float(b)) for b in BUCKETS] + ["+Inf"]


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for le, count in zip(_LE, self.counts, strict=True):
            running += count
            out.append((le, float(running)))
        return out


HISTOGRAMS = {
    "request": (
        "taoplan_gateway_request_duration_seconds",
        "Total time of a chat request as the caller saw it",
    ),
    "upstream": ("taoplan_gateway_upstream_duration_seconds", "Time the service took to answer"),
    "ttft": ("taoplan_gateway_time_to_first_token_seconds", "Streaming: time to the first answer chunk"),
}


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=False)
        self.requests: dict[tuple[str, str, str], int] = {}
        self.histograms: dict[str, dict[str, _Histogram]] = {kind: {} for kind in HISTOGRAMS}
        self.costs: dict[str, float] = {}
        #: job id -> ((service, replica, job id, arch, platform), 1 when a request may go to it)
        self.ready: dict[str, tuple[tuple[str, str, str, str, str], int]] = {}
        self.in_flight = 0
        self.workloads: Iterable[Service] = ()  # the table's, set before each scrape
        self.registry.register(_Collector(self))

    def _histogram(self, kind: str, service: str) -> _Histogram:
        found = self.histograms[kind].get(service)
        if found is None:
            found = self.histograms[kind][service] = _Histogram()
        return found

    def observe(
        self,
        service: str,
        caller: str,
        status: int,
        seconds: float,
        upstream: float | None,
        ttft: float | None,
        cost: float | None,
    ) -> None:
        key = (service, caller, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        self._histogram("request", service).observe(seconds)
        if upstream is not None:
            self._histogram("upstream", service).observe(upstream)
        if ttft is not None:
            self._histogram("ttft", service).observe(ttft)
        if cost:
            self.costs[caller] = self.costs.get(caller, 0.0) + cost

    def set_ready(self, service: Service) -> None:
        t = service.target
        labels = (service.name, service.key, t.job_id, t.arch or "-", t.platform or "-")
        self.ready[t.job_id] = (labels, 1 if service.routable else 0)

    def forget(self, job_id: str) -> None:
        self.ready.pop(job_id, None)

    def render(self) -> tuple[bytes, bytes]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST.encode()


class _Collector:
    """prometheus-client's view of the tallies, built at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        m = self.m
        requests = CounterMetricFamily(
            "taoplan_gateway_requests",
            "Chat requests answered, by service, caller and HTTP status",
            labels=["service", "caller", "status"],
        )
        for labels, count in sorted(m.requests.items()):
            requests.add_metric(list(labels), count)
        yield requests
        for kind, (name, text) in HISTOGRAMS.items():
            family = HistogramMetricFamily(name, text, labels=["service"])
            for service, hist in sorted(m.histograms[kind].items()):
                family.add_metric([service], hist.cumulative(), hist.total)
            yield family
        in_flight = GaugeMetricFamily("taoplan_gateway_requests_in_flight", "Chat requests in progress")
        in_flight.add_metric([], m.in_flight)
        yield in_flight
        cost = CounterMetricFamily(
            "taoplan_gateway_cost",
            "Cost attributed to each caller (per-token prices, else the request's GPU time x gpu_hour)",
            labels=["caller"],
        )
        for caller, value in sorted(m.costs.items()):
            cost.add_metric([caller], value)
        yield cost
        ready = GaugeMetricFamily(
            "taoplan_gateway_service_ready", "1 when the service is routed to (one of its workloads), else 0",
            labels=["service", "arch", "platform"],
        )  # fmt: skip
        by_service: dict[tuple[str, str, str], int] = {}
        for (service, _replica, _job, arch, platform), value in m.ready.values():
            key = (service, arch, platform)
            by_service[key] = max(value, by_service.get(key, 0))
        for service_labels, value in sorted(by_service.items()):
            ready.add_metric(list(service_labels), value)
        yield ready
        replica = GaugeMetricFamily(
            "taoplan_gateway_replica_ready", "1 when a request may go to this workload (ready, not draining)",
            labels=["service", "replica", "job_id", "arch", "platform"],
        )  # fmt: skip
        for workload_labels, value in sorted(m.ready.values()):
            replica.add_metric(list(workload_labels), value)
        yield replica
        busy = GaugeMetricFamily(
            "taoplan_gateway_replica_requests_in_flight", "Chat requests in progress on this workload",
            labels=["service", "replica", "job_id"],
        )  # fmt: skip
        for w in sorted(m.workloads, key=lambda w: (w.name, w.key, w.job_id)):
            busy.add_metric([w.name, w.key, w.job_id], w.inflight)
        yield busy
