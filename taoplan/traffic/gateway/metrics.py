"""``GET /metrics``: Prometheus text from prometheus-client, on a registry of the gateway's own.

Labels are bounded: ``service`` is a service of the table (anything else is ``-``), ``caller`` is a
key name or the OS user (``-`` before authentication), ``status`` an HTTP status. Key values never
appear; nor do end users (unbounded), which are in the request log instead.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taoplan.traffic.gateway.table import Service

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: half the text, nothing a dashboard uses

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "taoplan_gateway_requests", "Chat requests answered, by service, caller and HTTP status",
            ["service", "caller", "status"], registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "taoplan_gateway_request_duration_seconds", "Total time of a chat request as the caller saw it",
            ["service"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.upstream = Histogram(
            "taoplan_gateway_upstream_duration_seconds", "Time the service took to answer (whole answer)",
            ["service"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "taoplan_gateway_time_to_first_token_seconds", "Streaming: time to the first answer chunk",
            ["service"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge("taoplan_gateway_requests_in_flight", "Chat requests in progress", registry=r)
        self.cost = Counter(
            "taoplan_gateway_cost", "Cost attributed to each caller (per-token prices, else the request's "
            "GPU time x gpu_hour)", ["caller"], registry=r,
        )  # fmt: skip
        self.ready = Gauge(
            "taoplan_gateway_service_ready", "1 when the service is routed to, else 0",
            ["service", "arch", "platform"], registry=r,
        )  # fmt: skip
        self._children: dict[tuple[Any, ...], Any] = {}
        self._ready_labels: dict[str, tuple[str, str, str]] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

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
        self._child(self.requests, service, caller, str(status)).inc()
        self._child(self.duration, service).observe(seconds)
        if upstream is not None:
            self._child(self.upstream, service).observe(upstream)
        if ttft is not None:
            self._child(self.ttft, service).observe(ttft)
        if cost:
            self._child(self.cost, caller).inc(cost)

    def set_ready(self, name: str, service: Service) -> None:
        labels = (name, service.target.arch or "-", service.target.platform or "-")
        old = self._ready_labels.get(name)
        if old is not None and old != labels:
            self._remove_ready(old)
        self._ready_labels[name] = labels
        self.ready.labels(*labels).set(1 if service.ready else 0)

    def forget(self, name: str) -> None:
        labels = self._ready_labels.pop(name, None)
        if labels is not None:
            self._remove_ready(labels)

    def _remove_ready(self, labels: tuple[str, str, str]) -> None:
        with contextlib.suppress(KeyError):
            self.ready.remove(*labels)

    def render(self) -> tuple[bytes, bytes]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST.encode()
