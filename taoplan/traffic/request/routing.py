"""Which service receives a request: job id, then name, then arch, then the only one (pure).

A request never goes to "the latest" service: when the hints leave more than one candidate, the
error lists them all so the caller can pick. A service may run several workloads (replicas, and
during a rollout the retiring workloads it replaced): a name, an arch or no hint chooses among
*services*, and then the first routable workload of the chosen one (its replica 0 where it can).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taoplan.errors import RequestError

if TYPE_CHECKING:
    from taoplan.store.state import ServiceRecord, State


@dataclass(frozen=True)
class Target:
    """One workload a request can go to, from state.json or from the skill's registry."""

    job_id: str
    arch: str
    #: the instance key: the service name for replica 0, then ``chat.1``, ``chat.2``...
    name: str | None = None
    host_url: str | None = None
    started_at: str | None = None
    platform: str | None = None
    num_gpus: int = 1
    source: str = "state"  # state | registry
    #: a generic server's model name (the upstream body's ``model``); None for a TAO service
    served_name: str | None = None
    #: the services-file name this workload serves (None: ``name``; a registry entry's has none)
    service: str | None = None
    #: out of routing: finishing its in-flight requests before apply stops it
    draining: bool = False
    #: replaced by a rollout (state's ``retiring``): it serves until its successor is ready
    retiring: bool = False

    @property
    def group(self) -> str:
        """The service (services-file name) this workload serves; its job id when it has no name."""
        return self.service or self.name or self.job_id

    @property
    def who(self) -> str:
        """How messages name the service: its name, else its job id (skill-started services have none)."""
        return self.name or self.job_id

    def describe(self) -> str:
        return (
            f"name={self.name or '-'} job_id={self.job_id} started_at={self.started_at or '-'} "
            f"host_url={self.host_url or '-'}"
        )


def gpu_count(value: Any) -> int:
    """A recorded GPU count, or 1 where none (or nonsense) was recorded: cost is never priced at 0 GPUs."""
    return value if isinstance(value, int) and value > 0 else 1


def targets_from_state(state: State) -> list[Target]:
    """Every workload of state: the current ones and the retiring ones (they serve until their
    successor is ready); sorted by instance key, the current workload before a retiring one."""
    out = [target_of(record, False) for record in state.services.values()]
    out += [target_of(record, True) for record in state.retiring.values()]
    return sorted(out, key=lambda t: (t.name or "", t.retiring, t.job_id))


def target_of(record: ServiceRecord, retiring: bool = False) -> Target:
    return Target(
        job_id=record.job_id,
        arch=record.network_arch,
        name=record.name,
        host_url=record.host_url,
        started_at=record.started_at,
        platform=record.platform,
        num_gpus=gpu_count(record.spec.get("num_gpus") if isinstance(record.spec, dict) else None),
        source="state",
        served_name=served_name_of(record.spec),
        service=record.service_name,
        draining=record.draining,
        retiring=retiring,
    )


def served_name_of(spec: Any) -> str | None:
    """The ``server.served_name`` of a recorded spec (filled in by the loader); None for TAO."""
    server = spec.get("server") if isinstance(spec, dict) else None
    name = server.get("served_name") if isinstance(server, dict) else None
    return name if isinstance(name, str) and name else None


def targets_from_registry(entries: Mapping[str, Mapping[str, Any]]) -> list[Target]:
    """Registry entries (written by taoplan or by the TAO skill); the skill records no GPU count."""
    return [
        Target(
            job_id=str(entry.get("job_id") or key),
            arch=str(entry.get("network_arch") or "?"),
            name=_text(entry, "service"),
            host_url=_text(entry, "host_url"),
            started_at=str(entry["started_at"]) if entry.get("started_at") else None,
            platform=_text(entry, "platform"),
            num_gpus=gpu_count(entry.get("num_gpus")),
            source="registry",
        )
        for key, entry in entries.items()
    ]


def _text(entry: Mapping[str, Any], key: str) -> str | None:
    """A string field of a registry entry; the file is shared with other tools, so anything else is None."""
    value = entry.get(key)
    return value if isinstance(value, str) else None


def _listing(header: str, candidates: Sequence[Target]) -> RequestError:
    lines = [header] + [f"  {t.describe()}" for t in candidates]
    return RequestError(header, lines=lines)


def route(
    services: Sequence[Target],
    registry: Sequence[Target],
    *,
    name: str | None = None,
    job_id: str | None = None,
    arch: str | None = None,
    valid_archs: Iterable[str] = (),
) -> Target:
    """Pick the target: job id, then name, then arch, then the only service. Never "latest".

    ``services`` are this project's (state.json). ``registry`` entries are reachable by job id only,
    so services of other projects or of the skill never make a name/arch/no-hint choice ambiguous.
    """
    archs = list(valid_archs)
    if arch is not None and archs and arch not in archs:
        raise RequestError(f"unknown arch {arch!r}; valid: {', '.join(archs)}")
    if job_id is not None:
        found = next((t for t in services if t.job_id == job_id), None)
        found = found or next((t for t in registry if t.job_id == job_id), None)
        if found is None:
            raise RequestError(f"no service with job id {job_id} in state or in the registry")
        if name is not None and name not in (found.name, found.group):
            raise RequestError(f"job id {job_id} is service {found.name or '-'}, not {name}")
        if arch is not None and found.arch != arch:
            raise RequestError(f"job id {job_id} runs {found.arch}, not {arch}")
        return found
    if name is not None:
        found = _by_name(services, name)
        if found is None:
            known = ", ".join(_groups(services)) or "none"
            raise RequestError(
                f"no service named {name!r} in state (known: {known}); run 'taoplan apply' to start it"
            )
        if arch is not None and found.arch != arch:
            raise RequestError(f"service {name} runs {found.arch}, not {arch}")
        return found
    live = _serving(services)
    if arch is not None:
        matches = [t for t in live if t.arch == arch]
        if not matches:
            hint = "; a service started outside taoplan can be targeted with --job-id" if registry else ""
            raise RequestError(f"no service with arch {arch} in state{hint}")
        if len(_groups(matches)) > 1:
            head = f"{len(_groups(matches))} services run {arch}; choose one by NAME or --job-id:"
            raise _listing(head, matches)
        return matches[0]
    if not live:
        hint = " (or --job-id for a service started outside taoplan)" if registry else ""
        raise RequestError(f"no services in state; run 'taoplan apply' first{hint}")
    if len(_groups(live)) > 1:
        raise _listing(
            f"{len(_groups(live))} services are running; choose one by NAME, --arch or --job-id:", live
        )
    return live[0]


def _groups(targets: Iterable[Target]) -> list[str]:
    """The services (services-file names) of some workloads, each once, in order."""
    return list(dict.fromkeys(t.group for t in targets))


def _rank(target: Target) -> tuple[bool, bool]:
    """Workloads in order of preference: not draining, then current before retiring."""
    return (target.draining, target.retiring)


def _serving(targets: Sequence[Target]) -> list[Target]:
    """Each instance key once, in order, by its preferred workload (a retiring workload only while
    its key has no better one)."""
    best: dict[str, Target] = {}
    for t in targets:
        key = t.name or t.job_id
        if key not in best or _rank(t) < _rank(best[key]):
            best[key] = t
    return list(best.values())


def _by_name(services: Sequence[Target], name: str) -> Target | None:
    """``name`` as an instance key, else as a service (its first serving workload)."""
    exact = [t for t in services if t.name == name]
    if exact:
        return min(exact, key=_rank)
    of_service = [t for t in _serving(services) if t.group == name]
    return of_service[0] if of_service else None
