"""The one small interface every platform implements, and the data that crosses it.

Platforms execute; they never decide. The planner decides from what ``observe`` reports,
and the apply engine calls ``prepare``/``render``/``start``/``stop`` as the plan says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from taoplan.platforms.capacity import Capacity
from taoplan.spec.deployment import Deployment

if TYPE_CHECKING:
    from taoplan.spec.config import ServiceSpec
    from taoplan.spec.references import References
    from taoplan.store.state import ServiceRecord


@dataclass(frozen=True)
class Artifact:
    """A rendered file: what `taoplan render` writes and what apply executes."""

    name: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Placement:
    """What a platform allocated for a deployment before rendering (ports, remote names...)."""

    host_port: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Started:
    """What a platform reports once it has started a deployment.

    ``host_url`` is None while the workload cannot be reached yet (a queued batch job):
    ``endpoint()`` supplies it later.
    """

    host_url: str | None
    host_port: int | None = None
    docker_url: str | None = None
    platform_job_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: phases the platform timed inside start, as (phase, start, end) in epoch seconds: ("image pull", ...)
    phases: tuple[tuple[str, float, float], ...] = ()


@dataclass(frozen=True)
class Observation:
    """What really runs for one job_id, as the platform reports it (found by labels)."""

    job_id: str
    service: str
    status: str  # running | pending | failed (will not recover: stop waiting) | exited | missing
    spec_hash: str | None = None
    lineage: str | None = None
    exit_code: int | None = None
    detail: str = ""
    host_port: int | None = None
    expires_in: float | None = None  # seconds until the platform ends the workload (a walltime)
    platform: str = ""  # set by Workspace.refresh: which platform reported it


@dataclass(frozen=True)
class Endpoint:
    """Where a workload answers now, and what its state record must remember for that.

    ``url`` is None while it cannot be reached (still queued; a tunnel that may not be reopened),
    and ``detail`` says why. ``updates`` are ServiceRecord fields the caller persists under the
    state lock (a reopened tunnel's PID and port); ``extra`` is merged, not replaced.

    ``headers`` go with every request to ``url`` (readiness, status, chat): an endpoint that wants
    ``Authorization: Bearer <token>`` gets it here. They are secrets, in memory only: never put
    them in ``updates``, state, the registry or a log line (``repr`` leaves them out).
    """

    url: str | None
    detail: str = ""
    updates: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def apply_to(self, record: ServiceRecord) -> None:
        """Write ``updates`` into ``record`` in place."""
        for key, value in self.updates.items():
            if key == "extra":
                record.extra = {**record.extra, **value}
            else:
                setattr(record, key, value)


@dataclass(frozen=True)
class Check:
    """One line of `taoplan doctor`."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class PlatformContext:
    project: str
    lineage: str
    state_dir: Path
    refs: References
    #: FILE:LINE:COL of a path in the services file (("platforms", "lepton", "node_group")), for a
    #: platform's own located errors about its settings; None when no file is at hand.
    locate: Callable[[Sequence[str | int]], str] | None = None

    def where(self, loc: Sequence[str | int]) -> str:
        """``FILE:LINE:COL: a.b.c`` for an error about the setting at ``loc``."""
        field_name = ".".join(str(p) for p in loc)
        return f"{self.locate(loc)}: {field_name}" if self.locate is not None else field_name


class Platform(Protocol):
    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def replace_strategy(self, num_gpus: int, host_port: int | None) -> tuple[bool, str]:
        """(can the old and the new workload run at once, note): False with why not (a fixed
        port); True with a note when the platform holds no GPUs for it. Whether the GPUs can be
        held twice is decided from capacity (engine.rollout). Pure: it must not touch the network."""
        ...

    def describe(self, spec: ServiceSpec) -> tuple[str, ...]:
        """How this platform will run a service, shown in the plan of a create or replace. Pure."""
        ...

    def warm(self, writing: bool = False) -> None:
        """Import the client libraries that observing (or, ``writing``, changing) needs now, in the
        main thread, before platforms are used concurrently."""
        ...

    def dry_run(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> list[str]:
        """Problems the platform would raise on start, found without changing anything (may be none)."""
        ...

    def prepare(self, deployments: Sequence[Deployment], taken: set[int]) -> dict[str, Placement]:
        """Allocate what rendering needs (ports...), keyed by job_id."""
        ...

    def render(self, deployment: Deployment, placement: Placement) -> list[Artifact]: ...

    def start(
        self, deployment: Deployment, placement: Placement, artifacts: Sequence[Artifact]
    ) -> Started: ...

    def observe(self) -> dict[str, Observation]:
        """Every workload carrying this project's labels, keyed by job_id."""
        ...

    def probe(self, job_id: str) -> Observation:
        """The current state of one workload; cheap enough to call while waiting for readiness."""
        ...

    def capacity(self, wanted: tuple[int, ...]) -> Capacity:
        """The GPUs this platform can give now, read during refresh (``wanted``: the GPU counts the
        file asks of it, for a per-size start estimate). Report only; ``engine.fit`` decides.

        Optional: a platform without it (``capacity.capacity_of``) is "unknown", never guessed."""
        ...

    def stop(self, record: ServiceRecord) -> None: ...

    def remove(self, job_id: str) -> None:
        """Stop a workload known only by its job_id label (an orphan)."""
        ...

    def endpoint(self, record: ServiceRecord, reopen: bool = True) -> Endpoint:
        """Where the workload answers now. With ``reopen`` it may start what that needs (a tunnel)
        and report it in ``updates``; without, it only looks. Called under the state lock when reopening."""
        ...

    def logs(self, record: ServiceRecord, tail: int, follow: bool) -> Iterator[str]: ...

    def doctor(self, deployments: Sequence[Deployment]) -> list[Check]: ...


class PlatformClass(Protocol):
    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def __call__(self, config: Any, ctx: PlatformContext) -> Platform: ...


__all__ = [
    "Artifact",
    "Capacity",
    "Check",
    "Deployment",
    "Endpoint",
    "Observation",
    "Placement",
    "Platform",
    "PlatformClass",
    "PlatformContext",
    "Started",
]
