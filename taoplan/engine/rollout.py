"""Rolling or recreate: how a replace runs, decided once for every platform (pure).

- **rolling**: the new workload starts while the old one serves; once the new one is ready (and
  answered its smoke request) it takes traffic, the old one leaves routing, drains its in-flight
  requests (up to ``drain_timeout``) and is deleted. Replicas roll one at a time (max surge 1).
- **recreate**: the old workload stops first. For GPUs that cannot be held twice, a fixed port,
  or ``rollout: recreate``.

The platform says what cannot be held twice by its nature (``Platform.replace_strategy``: a fixed
port; or that it holds no GPUs at all); the GPUs free on the target platform, read at refresh,
decide the rest. The words are the plan's: "rolling: needs 2 more GPUs during the rollout; 2 are
free", "recreate: only 1 GPU on this host".
"""

from __future__ import annotations

from dataclasses import dataclass

from taoplan.platforms.capacity import Capacity
from taoplan.spec.desired import Desired


@dataclass(frozen=True)
class Choice:
    rolling: bool
    why: str  # the plan's reason line, starting with "rolling:" or "recreate:"


def choose(
    want: Desired,
    structural: tuple[bool, str],
    capacity: Capacity | None,
    *,
    routed: bool,
    moving_from: str | None = None,
) -> Choice:
    """``structural``: the platform's (can hold two at once, note); ``capacity``: the target
    platform's GPUs as refresh read them (None: refresh was off); ``routed``: the services file
    declares a gateway, so the service has callers to keep; ``moving_from``: the platform the
    old workload runs on, when it is not the new one (its GPUs are no help to the new one)."""
    can, note = structural
    spec = want.spec
    if spec.rollout == "recreate":
        return Choice(False, "recreate: rollout: recreate (the old workload stops first)")
    if moving_from is not None:
        return Choice(
            True, f"rolling: moving from {moving_from}; the old workload serves until the new one is ready"
        )
    if not can:
        return Choice(False, f"recreate: {note}")
    if note:  # the platform holds no GPUs for it: nothing to hold twice
        return Choice(True, f"rolling: {note}")
    need = spec.num_gpus
    more = f"needs {need} more {_gpus(need)} during the rollout"
    wanted = spec.rollout == "rolling" or spec.replicas > 1 or routed
    if capacity is None or capacity.unknown:
        known = capacity.unknown if capacity is not None else "refresh was off"
        if wanted:
            return Choice(True, f"rolling: {more}; free GPUs not known ({known})")
        return Choice(
            False,
            f"recreate: free GPUs not known ({known}); set rollout: rolling to start the new workload first",
        )
    free = max((p.free for p in capacity.places), default=0)
    if free >= need:
        return Choice(True, f"rolling: {more}; {free} {_are(free)} free")
    if spec.rollout == "rolling":
        return Choice(True, f"rolling (rollout: rolling): {more}; {free} {_are(free)} free now")
    largest = max(capacity.places, key=lambda p: (p.gpus, p.name), default=None)
    if largest is not None and largest.gpus < 2 * need:
        where = "this host" if len(capacity.places) == 1 else f"any one place (largest: {largest.name})"
        return Choice(False, f"recreate: only {largest.gpus} {_gpus(largest.gpus)} on {where}")
    return Choice(False, f"recreate: a rolling replace {more}; {free} {_are(free)} free")


def _gpus(n: int) -> str:
    return "GPU" if n == 1 else "GPUs"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"
