"""The routing table: the project's workloads (state.json, followed while the gateway runs), where
each one answers, whether it is ready, how many requests it has in flight, and which one a
request's ``model`` goes to.

- The table is keyed by job id: a workload that a rollout moves from ``services`` to ``retiring``,
  or marks draining, keeps its entry and its readiness (no new probe, so no gap in routing).
- ``model`` names a service (its services-file name): the request goes to one of its routable
  workloads (probed ready, not draining), the one with the fewest requests in flight, ties in turn.
  An instance key (``chat.1``) routes to that replica only. An arch name routes only when exactly
  one *service* runs it with a routable workload (the "never a silent latest" rule of
  ``taoplan request``).
- The in-flight count of a workload goes up in the same synchronous step that chooses it
  (``pick``), and down when the request ends (``release``): what a rollout waits on to stop it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from taoplan.labels import replica_of
from taoplan.platforms.common.health import CONNECTING, FATAL, READY, Verdict
from taoplan.traffic.gateway.errors import GatewayError, bad_request, unavailable
from taoplan.traffic.request.routing import Target, targets_from_state

if TYPE_CHECKING:
    from taoplan.spec.references import ReadinessRefs
    from taoplan.store.state import State

#: Retry-After for a service that is loading, and for one that will not load without a new apply.
RETRY_LOADING = 2.0
RETRY_FATAL = 30.0
DRAINING = "draining"


@dataclass(eq=False)
class Service:
    """One workload (a replica of a service, or a retiring one) and what the watcher last saw."""

    target: Target
    url: str | None  # where it answers now (None: no endpoint, see ``detail``)
    detail: str = ""
    gpu_hour: float | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # the endpoint's own (a secret)
    verdict: Verdict = field(default_factory=lambda: Verdict("wait", CONNECTING, "not probed yet"))
    since: float = field(default_factory=time.monotonic)  # when the verdict last changed
    generation: int = 0  # bumps when the record changes (a replace): watchers restart
    readiness: ReadinessRefs | None = None  # a generic server's own contract; None: TAO's
    inflight: int = 0  # requests chosen for it and not yet ended

    @property
    def name(self) -> str:
        """The service this workload serves: what logs, keys, metrics and messages name."""
        return self.target.group

    @property
    def key(self) -> str:
        """The instance key: the service name for replica 0, then ``name.1``..."""
        return self.target.name or self.target.job_id

    @property
    def job_id(self) -> str:
        return self.target.job_id

    @property
    def ready(self) -> bool:
        """Probed ready (a draining workload may still be: it finishes what it has)."""
        return self.url is not None and self.verdict.kind == READY

    @property
    def routable(self) -> bool:
        """A new request may go to it: ready and not draining."""
        return self.ready and not self.target.draining

    @property
    def reason(self) -> str:
        if self.url is None:
            return "endpoint_down"
        if self.target.draining and self.verdict.kind == READY:
            return DRAINING
        return self.verdict.reason

    @property
    def message(self) -> str:
        if self.url is None:
            return self.detail
        if self.target.draining and self.verdict.kind == READY:
            return "replaced by a rollout; finishing its requests"
        return self.verdict.message

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


def _order(service: Service) -> tuple[object, ...]:
    """Workloads of one service: replica 0 first, then by replica number; current before retiring."""
    t = service.target
    return (replica_of(service.key), service.key, t.retiring, t.job_id)


def _preference(service: Service) -> tuple[object, ...]:
    """Which workload speaks for a service that has no routable one: not draining, current, not
    failed for good (a loading one says when to retry), then replica order."""
    return (service.target.draining, service.target.retiring, service.verdict.kind == FATAL, _order(service))


class Table:
    """Workloads by job id; changed in place when state changes, so readiness survives a rewrite."""

    def __init__(self, archs: Iterable[str]) -> None:
        self.services: dict[str, Service] = {}  # job id -> workload
        self.archs = frozenset(archs)
        #: the serial of the state the table reflects (what it routes away from, at least)
        self.serial: int | None = None
        self.stamp: tuple[int, int, int] | None = None
        self.inflight: dict[str, int] = {}  # job id -> requests in flight (also of dropped workloads)
        self._by_group: dict[str, list[Service]] = {}  # service name -> its workloads, in order
        self._by_key: dict[str, list[Service]] = {}  # instance key -> its workloads (2 in a rollout)
        self._stale = False  # the two indexes are rebuilt on the next read, not on every change
        self._turn: dict[str, int] = {}  # round robin among equally busy workloads

    # ----------------------------------------------------------------------------- changes

    def diff(self, state: State) -> tuple[list[Target], list[Target], list[str]]:
        """(targets new or of another workload, targets whose other fields changed, job ids gone)."""
        targets = {t.job_id: t for t in targets_from_state(state)}
        changed, updated = [], []
        for job_id, t in targets.items():
            found = self.services.get(job_id)
            if found is None or record_key(found.target) != record_key(t):
                changed.append(t)
            elif found.target != t:
                updated.append(t)
        gone = [job_id for job_id in self.services if job_id not in targets]
        return changed, updated, gone

    def add(self, service: Service) -> Service | None:
        """Put a workload in (replacing the entry of its job id); returns the one it replaced."""
        old = self.services.get(service.job_id)
        if old is not None:
            service.generation = old.generation + 1
        self.services[service.job_id] = service
        self._stale = True
        return old

    def update(self, target: Target) -> Service | None:
        """A workload's record changed but not where it answers (draining, retiring): in place."""
        found = self.services.get(target.job_id)
        if found is not None:
            found.target = target
            self._stale = True
        return found

    def drop(self, job_id: str) -> Service | None:
        found = self.services.pop(job_id, None)
        if found is not None:
            self._stale = True
        return found

    @property
    def _groups(self) -> dict[str, list[Service]]:
        if self._stale:
            self._index()
        return self._by_group

    @property
    def _keys(self) -> dict[str, list[Service]]:
        if self._stale:
            self._index()
        return self._by_key

    def _index(self) -> None:
        """Once after a batch of changes (a state load adds or moves many workloads at once)."""
        groups: dict[str, list[Service]] = {}
        keys: dict[str, list[Service]] = {}
        for service in sorted(self.services.values(), key=_order):
            groups.setdefault(service.name, []).append(service)
            keys.setdefault(service.key, []).append(service)
        self._by_group, self._by_key, self._stale = groups, keys, False

    # ----------------------------------------------------------------------------- reading

    def names(self) -> list[str]:
        """The services (services-file names), sorted: what ``model`` names."""
        return sorted(self._groups)

    def workloads(self, name: str) -> list[Service]:
        """A service's workloads (replica 0 first), or an instance key's; [] when neither."""
        return self._groups.get(name) or self._keys.get(name) or []

    def speaker(self, name: str) -> Service | None:
        """The workload that stands for a service in a listing: a routable one, else the best."""
        members = self.workloads(name)
        if not members:
            return None
        return next((s for s in members if s.routable), None) or min(members, key=_preference)

    def routed(self) -> frozenset[str]:
        """Job ids a new request may go to now."""
        return frozenset(job_id for job_id, s in self.services.items() if s.routable)

    def ready_names(self) -> list[str]:
        """Services with at least one routable workload."""
        return [name for name, members in self._groups.items() if any(s.routable for s in members)]

    # ----------------------------------------------------------------------------- routing

    def pick(self, model: str, exclude: Iterable[str] = ()) -> Service:
        """The workload ``model`` goes to, counted in flight at once (no await in between), or the
        HTTP refusal that says why and what exists. ``exclude``: job ids not to choose (a retry)."""
        service = self.choose(model, frozenset(exclude))
        self.take(service)
        return service

    def take(self, service: Service) -> None:
        service.inflight += 1
        self.inflight[service.job_id] = self.inflight.get(service.job_id, 0) + 1

    def release(self, service: Service) -> None:
        service.inflight -= 1
        left = self.inflight.get(service.job_id, 0) - 1
        if left > 0:
            self.inflight[service.job_id] = left
        else:
            self.inflight.pop(service.job_id, None)

    def choose(self, model: str, exclude: frozenset[str] = frozenset()) -> Service:
        members = self._groups.get(model) or self._keys.get(model)
        if members is not None:
            return self._least(model, members, exclude)
        if model in self.archs:
            of_arch = [s for s in self.services.values() if s.target.arch == model]
            if of_arch:
                names = {s.name for s in of_arch if s.routable and s.job_id not in exclude}
                if len(names) != 1:
                    raise self._ambiguous(model, of_arch)
                (name,) = names
                return self._least(name, self._groups[name], exclude)
        known = ", ".join(self.names()) or "none (run 'taoplan apply')"
        raise GatewayError(
            404,
            f"the model {model!r} does not exist: give a service name (services: {known})",
            code="model_not_found",
            param="model",
        )

    def _least(self, label: str, members: list[Service], exclude: frozenset[str]) -> Service:
        """The routable workload with the fewest requests in flight; equals take turns."""
        low = -1
        ties: list[Service] = []
        for s in members:
            if not s.routable or s.job_id in exclude:
                continue
            if low < 0 or s.inflight < low:
                low, ties = s.inflight, [s]
            elif s.inflight == low:
                ties.append(s)
        if not ties:
            raise self.not_ready(min(members, key=_preference))
        if len(ties) == 1:
            return ties[0]
        turn = self._turn.get(label, 0)
        self._turn[label] = turn + 1
        return ties[turn % len(ties)]

    def _ambiguous(self, arch: str, of_arch: list[Service]) -> GatewayError:
        names = sorted({s.name for s in of_arch})
        state = {}
        for name in names:
            speaker = self.speaker(name)
            assert speaker is not None
            state[name] = "ready" if speaker.routable else speaker.reason
        ready = [n for n in names if state[n] == "ready"]
        listed = ", ".join(f"{n} ({state[n]})" for n in names)
        if ready:
            head = f"{len(ready)} ready services run {arch}; an arch routes only when exactly one does"
        else:
            head = f"no service running {arch} is ready"
        return bad_request(f"{head}; set model to a service name: {listed}", code="ambiguous_model")

    @staticmethod
    def not_ready(service: Service) -> GatewayError:
        fatal = service.verdict.kind == FATAL
        who = service.name if service.key == service.name else f"{service.name} (replica {service.key})"
        message = f"service {who} is not ready ({service.reason})"
        if service.message:
            message += f": {service.message}"
        if fatal:
            message += f"; it will not become ready without a new apply (see taoplan logs {service.name})"
        return unavailable(message, service.reason, RETRY_FATAL if fatal else RETRY_LOADING)


def file_stamp(path: os.PathLike[str] | str) -> tuple[int, int, int] | None:
    """(mtime_ns, size, inode) of a file, or None when it is absent: a cheap change detector."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
