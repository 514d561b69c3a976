"""The routing table: the project's services (state.json, followed while the gateway runs), where each
one answers, whether it is ready, and which one a request's ``model`` names.

``model`` is a service name; an arch name routes only when exactly one *ready* service runs it. The
decision is ``taoplan.traffic.request.routing.route`` (the "never a silent latest" rule of
``taoplan request``); this module only words its refusals as HTTP answers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from taoplan.errors import RequestError
from taoplan.platforms.common.health import CONNECTING, FATAL, READY, Verdict
from taoplan.traffic.gateway.errors import GatewayError, bad_request, unavailable
from taoplan.traffic.request.routing import Target, route, targets_from_state

if TYPE_CHECKING:
    from taoplan.spec.references import ReadinessRefs
    from taoplan.store.state import State

#: Retry-After for a service that is loading, and for one that will not load without a new apply.
RETRY_LOADING = 2.0
RETRY_FATAL = 30.0


@dataclass
class Service:
    """One routable service and what the readiness watcher last saw."""

    target: Target
    url: str | None  # where it answers now (None: no endpoint, see ``detail``)
    detail: str = ""
    gpu_hour: float | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # the endpoint's own (a secret)
    verdict: Verdict = field(default_factory=lambda: Verdict("wait", CONNECTING, "not probed yet"))
    since: float = field(default_factory=time.monotonic)  # when the verdict last changed
    generation: int = 0  # bumps when the record changes (a replace): watchers restart
    readiness: ReadinessRefs | None = None  # a generic server's own contract; None: TAO's

    @property
    def name(self) -> str:
        return self.target.name or self.target.job_id

    @property
    def ready(self) -> bool:
        return self.url is not None and self.verdict.kind == READY

    @property
    def reason(self) -> str:
        if self.url is None:
            return "endpoint_down"
        return self.verdict.reason

    @property
    def message(self) -> str:
        return self.detail if self.url is None else self.verdict.message

    def set_verdict(self, verdict: Verdict) -> bool:
        """Record a probe; True when readiness changed (ready <-> not, or another reason)."""
        changed = (verdict.kind, verdict.reason) != (self.verdict.kind, self.verdict.reason)
        self.verdict = verdict
        if changed:
            self.since = time.monotonic()
        return changed


def record_key(target: Target) -> tuple[object, ...]:
    """What makes a record a different workload (a replace gives a new job id or URL)."""
    return (target.job_id, target.host_url, target.arch, target.platform, target.started_at)


class Table:
    """Services by name; rebuilt in place when state changes, so readiness survives a no-op write."""

    def __init__(self, archs: Iterable[str]) -> None:
        self.services: dict[str, Service] = {}
        self.archs = frozenset(archs)
        self.serial: int | None = None
        self.stamp: tuple[int, int, int] | None = None

    def diff(self, state: State) -> tuple[list[Target], list[str]]:
        """(targets new or changed, names gone) between the table and ``state``."""
        targets = {t.name or t.job_id: t for t in targets_from_state(state)}
        changed = [
            t for name, t in targets.items()
            if name not in self.services or record_key(self.services[name].target) != record_key(t)
        ]  # fmt: skip
        gone = [name for name in self.services if name not in targets]
        return changed, gone

    def ready_targets(self) -> list[Target]:
        return [s.target for s in self.services.values() if s.ready]

    def resolve(self, model: str) -> Service:
        """The service ``model`` names, ready; else the HTTP refusal that says why and what exists."""
        service = self.services.get(model)
        if service is not None:
            if not service.ready:
                raise self.not_ready(service)
            return service
        if model in self.archs:
            of_arch = [s for s in self.services.values() if s.target.arch == model]
            if of_arch:
                try:
                    target = route(self.ready_targets(), [], arch=model)
                except RequestError:
                    raise self._ambiguous(model, of_arch) from None
                return self.services[target.name or target.job_id]
        known = ", ".join(sorted(self.services)) or "none (run 'taoplan apply')"
        raise GatewayError(
            404,
            f"the model {model!r} does not exist: give a service name (services: {known})",
            code="model_not_found",
            param="model",
        )

    def _ambiguous(self, arch: str, of_arch: list[Service]) -> GatewayError:
        ready = sorted(s.name for s in of_arch if s.ready)
        listed = ", ".join(
            f"{s.name} ({'ready' if s.ready else s.reason})" for s in sorted(of_arch, key=_name)
        )
        if ready:
            head = f"{len(ready)} ready services run {arch}; an arch routes only when exactly one does"
        else:
            head = f"no service running {arch} is ready"
        return bad_request(f"{head}; set model to a service name: {listed}", code="ambiguous_model")

    @staticmethod
    def not_ready(service: Service) -> GatewayError:
        fatal = service.verdict.kind == FATAL
        message = f"service {service.name} is not ready ({service.reason})"
        if service.message:
            message += f": {service.message}"
        if fatal:
            message += f"; it will not become ready without a new apply (see taoplan logs {service.name})"
        return unavailable(message, service.reason, RETRY_FATAL if fatal else RETRY_LOADING)


def _name(service: Service) -> str:
    return service.name


def file_stamp(path: os.PathLike[str] | str) -> tuple[int, int, int] | None:
    """(mtime_ns, size, inode) of a file, or None when it is absent: a cheap change detector."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
