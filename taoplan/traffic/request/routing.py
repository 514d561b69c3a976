"""Which service receives a request: job id, then name, then arch, then the only one (pure).

A request never goes to "the latest" service: when the hints leave more than one candidate, the
error lists them all so the caller can pick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taoplan.errors import RequestError

if TYPE_CHECKING:
    from taoplan.store.state import State


@dataclass(frozen=True)
class Target:
    """One service a request can go to, from state.json or from the skill's registry."""

    job_id: str
    arch: str
    name: str | None = None
    host_url: str | None = None
    started_at: str | None = None
    platform: str | None = None
    num_gpus: int = 1
    source: str = "state"  # state | registry
    #: a generic server's model name (the upstream body's ``model``); None for a TAO service
    served_name: str | None = None

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
    out = [
        Target(
            job_id=record.job_id,
            arch=record.network_arch,
            name=record.name,
            host_url=record.host_url,
            started_at=record.started_at,
            platform=record.platform,
            num_gpus=gpu_count(record.spec.get("num_gpus") if isinstance(record.spec, dict) else None),
            source="state",
            served_name=served_name_of(record.spec),
        )
        for record in state.services.values()
    ]
    return sorted(out, key=lambda t: (t.name or "", t.job_id))


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
        if name is not None and found.name != name:
            raise RequestError(f"job id {job_id} is service {found.name or '-'}, not {name}")
        if arch is not None and found.arch != arch:
            raise RequestError(f"job id {job_id} runs {found.arch}, not {arch}")
        return found
    if name is not None:
        found = next((t for t in services if t.name == name), None)
        if found is None:
            known = ", ".join(t.who for t in services) or "none"
            raise RequestError(
                f"no service named {name!r} in state (known: {known}); run 'taoplan apply' to start it"
            )
        if arch is not None and found.arch != arch:
            raise RequestError(f"service {name} runs {found.arch}, not {arch}")
        return found
    if arch is not None:
        matches = [t for t in services if t.arch == arch]
        if not matches:
            hint = "; a service started outside taoplan can be targeted with --job-id" if registry else ""
            raise RequestError(f"no service with arch {arch} in state{hint}")
        if len(matches) > 1:
            raise _listing(f"{len(matches)} services run {arch}; choose one by NAME or --job-id:", matches)
        return matches[0]
    if not services:
        hint = " (or --job-id for a service started outside taoplan)" if registry else ""
        raise RequestError(f"no services in state; run 'taoplan apply' first{hint}")
    if len(services) > 1:
        raise _listing(
            f"{len(services)} services are running; choose one by NAME, --arch or --job-id:", services
        )
    return services[0]
