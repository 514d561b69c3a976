"""Does it fit? One verdict per create or replace, decided the same way for every platform.

Pure: the input is what each platform's ``capacity()`` reported during refresh
(``platforms.capacity.Capacity``), the plan's changes and recorded state. Nothing here asks the network.

- **fits**: a place has the GPUs free now, after what this plan starts before it (file order) and
  with what it stops first (deletes, destroy-before-create replaces) given back;
- **queues**: the platform will hold it back until GPUs free up; the verdict says how many are free
  and who holds the rest, and the platform's estimate (Slurm's ``sbatch --test-only``) when it has one;
- **cannot fit**: no place is big enough (or none matches the partition / node selector), or the
  GPUs are busy on a platform that does not queue (Docker starts the container on a busy GPU);
- **unknown**: no GPU information (no NVML or nvidia-smi, ``gpus: none``, a platform that does
  not report capacity); it says why and never guesses.

Services that fit one by one but not together are reported as such: the later ones in file
order get "queues" (or "cannot fit" where nothing queues), naming the ones they collide with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from taoplan.errors import TaoplanError
from taoplan.platforms.capacity import Capacity, Hold, Place
from taoplan.store.state import State

FITS, QUEUES, CANNOT_FIT, UNKNOWN = "fits", "queues", "cannot fit", "unknown"
VERDICTS = (FITS, QUEUES, CANNOT_FIT, UNKNOWN)


@dataclass(frozen=True)
class Ask:
    """One create or replace, as the fit model sees it."""

    service: str
    platform: str
    gpus: int
    frees: str | None = None  # the job_id this change stops before it starts (destroy before create)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    detail: str


def _plural(n: int, resource: str) -> str:
    return f"{n} {resource}" if resource != "GPU" or n == 1 else f"{n} GPUs"


def _holder(hold: Hold, names: Mapping[str, str]) -> str:
    if hold.job_id and hold.job_id in names:
        return f"service {names[hold.job_id]} ({hold.job_id[:8]})"
    if hold.job_id:
        return hold.who or f"taoplan job {hold.job_id[:8]} of another project"
    return hold.who or "another workload"


def _held_by(cap: Capacity, places: Sequence[Place], names: Mapping[str, str], skip: set[str]) -> str:
    wanted = {p.name for p in places}
    parts = [
        f"{_plural(h.gpus, cap.resource)} held by {_holder(h, names)}"
        + (f" on {h.place}" if len(cap.places) > 1 else "")
        for h in cap.holds
        if h.place in wanted and h.gpus > 0 and (h.job_id or "") not in skip
    ]
    return "; ".join(parts)


def decide(
    asks: Sequence[Ask],
    capacities: Mapping[str, Capacity],
    recorded: State,
    stopped_first: Sequence[str] = (),
) -> tuple[dict[str, Verdict], list[str]]:
    """Verdicts keyed by service, and plan warnings (services that fit alone but not together).

    ``stopped_first``: job_ids apply stops before any create (deletes); their GPUs count as free.
    """
    names = {r.job_id: r.name for r in recorded.services.values()}
    out: dict[str, Verdict] = {}
    warnings: list[str] = []
    by_platform: dict[str, list[Ask]] = {}
    for ask in asks:
        by_platform.setdefault(ask.platform, []).append(ask)
    for platform, group in by_platform.items():
        cap = capacities.get(platform) or Capacity.not_known(f"platform {platform}: capacity not read")
        freed = set(stopped_first) | {a.frees for a in group if a.frees}
        given_back: dict[str, int] = {}
        for hold in cap.holds:
            if hold.job_id and hold.job_id in freed:
                given_back[hold.place] = given_back.get(hold.place, 0) + hold.gpus
        alone = {p.name: min(p.gpus, p.free + given_back.get(p.name, 0)) for p in cap.places}
        left = dict(alone)
        placed: dict[str, list[str]] = {}  # place -> services this plan puts there
        together: list[str] = []
        for ask in group:
            verdict = _one(ask, cap, names, freed, alone, left, placed)
            if verdict.verdict != FITS and verdict.detail.startswith("fits alone"):
                together.append(ask.service)
            out[ask.service] = verdict
        if together:
            others = sorted({s for services in placed.values() for s in services})
            warnings.append(
                f"{platform}: {', '.join(together)} fit one by one but not together with "
                f"{', '.join(others)} ({_plural(sum(alone.values()), cap.resource)} free in all)"
            )
    return out, warnings


def _one(
    ask: Ask,
    cap: Capacity,
    names: Mapping[str, str],
    freed: set[str],
    alone: dict[str, int],
    left: dict[str, int],
    placed: dict[str, list[str]],
) -> Verdict:
    need = _plural(ask.gpus, cap.resource)
    if cap.unknown:
        return Verdict(UNKNOWN, cap.unknown)
    if not cap.places:
        return Verdict(CANNOT_FIT, cap.no_place or f"no place offers {cap.resource}")
    biggest = max(cap.places, key=lambda p: (p.gpus, p.name))
    if biggest.gpus < ask.gpus:
        where = f"the largest place ({biggest.name}) has {biggest.gpus}"
        return Verdict(CANNOT_FIT, f"needs {need} on one place; {where}")
    big_enough = [p for p in cap.places if p.gpus >= ask.gpus]
    fitting = [p for p in big_enough if left[p.name] >= ask.gpus]
    if fitting:
        best = min(fitting, key=lambda p: (left[p.name], p.name))
        free_there = left[best.name]
        left[best.name] -= ask.gpus
        placed.setdefault(best.name, []).append(ask.service)
        return Verdict(FITS, f"{need} on {best.name} ({free_there} of {best.gpus} free)")
    most = max(left[p.name] for p in big_enough)
    estimate = cap.estimates.get(ask.gpus)
    tail = f"; {estimate}" if estimate else ""
    if any(alone[p.name] >= ask.gpus for p in big_enough):
        with_ = sorted({s for p in big_enough for s in placed.get(p.name, [])})
        detail = (
            f"fits alone but not together with {', '.join(with_)} (started by this apply): "
            f"needs {need}, {most} left free on one place"
        )
        if not cap.queues:
            return Verdict(CANNOT_FIT, detail + "; this platform does not queue")
        return Verdict(QUEUES, detail + tail)
    held = _held_by(cap, big_enough, names, freed)
    detail = f"needs {need}, {most} free now on one place" + (f"; {held}" if held else "")
    if not cap.queues:
        return Verdict(CANNOT_FIT, detail + "; this platform does not queue (the GPUs are busy)")
    return Verdict(QUEUES, detail + tail)


class WillNotFit(TaoplanError):
    """apply refuses: a change cannot fit, or queues without --allow-queue. Nothing was started."""


def check_apply(changes: Sequence[object], allow_queue: bool) -> None:
    """Raise WillNotFit (exit 1) naming every refused change with its verdict."""
    lines = refusals(changes, allow_queue)
    if lines:
        lines.append("nothing was started")
        raise WillNotFit(lines[0], lines=lines)


def refusals(changes: Sequence[object], allow_queue: bool) -> list[str]:
    """Why apply must not start: each change that cannot fit, and each that queues without --allow-queue."""
    lines = []
    for change in changes:
        fit, detail, service = (getattr(change, k) for k in ("fit", "fit_detail", "service"))
        if fit == CANNOT_FIT:
            lines.append(f"{service}: cannot fit: {detail}")
        elif fit == QUEUES and not allow_queue:
            lines.append(f"{service}: queues: {detail} (apply --allow-queue lets it wait)")
    return lines
