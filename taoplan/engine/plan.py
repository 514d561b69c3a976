"""The plan as data, and the planner: a pure function of desired x recorded x observed.

Nothing here touches the network. The human printer and --json are two views of ``Plan``;
a saved plan is this object serialized with the state serial it was made against.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from taoplan.engine import fit
from taoplan.errors import ConfigError
from taoplan.platforms.base import Observation
from taoplan.platforms.capacity import Capacity
from taoplan.spec.desired import Desired
from taoplan.store.state import ServiceRecord, State

CREATE, REPLACE, DELETE, NOOP = "create", "replace", "delete", "noop"
ACTIONS = (CREATE, REPLACE, DELETE, NOOP)
PLAN_FORMAT = "1"


@dataclass(frozen=True)
class Change:
    service: str
    action: str
    reasons: tuple[str, ...]
    platform: str
    job_id: str | None = None  # the existing workload this change acts on (replace/delete/noop)
    orphan: bool = False  # a workload that carries our labels but is not in state
    create_before_destroy: bool = False
    await_ready: bool = False  # noop, but apply still waits for readiness
    state_only: tuple[str, ...] = ()  # fields that change state but not what runs (protect, readiness)
    fit: str = ""  # creates and replaces: fits | queues | cannot fit | unknown (engine.fit)
    fit_detail: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"service": self.service, "action": self.action, "reasons": list(self.reasons)}
        if self.fit:
            out["fit"] = {"verdict": self.fit, "detail": self.fit_detail}
        return out


@dataclass(frozen=True)
class Plan:
    project: str
    lineage: str
    state_serial: int
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    refreshed: bool = True

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(c.action != NOOP or c.state_only or c.await_ready for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT,
            "changes": [c.to_json() for c in self.changes],
            "summary": self.summary(),
        }

    def to_saved(self) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT,
            "kind": "taoplan-plan",
            "project": self.project,
            "lineage": self.lineage,
            "state_serial": self.state_serial,
            "refreshed": self.refreshed,
            "warnings": list(self.warnings),
            "changes": [asdict(c) for c in self.changes],
        }

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> Plan:
        changes = tuple(
            Change(**{**c, "reasons": tuple(c["reasons"]), "state_only": tuple(c.get("state_only", ()))})
            for c in data["changes"]
        )
        return cls(
            project=data["project"],
            lineage=data["lineage"],
            state_serial=data["state_serial"],
            changes=changes,
            warnings=tuple(data.get("warnings", ())),
            refreshed=data.get("refreshed", True),
        )


class ProtectedError(ConfigError):
    """A plan would delete or replace a service marked protect: true."""


ReplaceStrategy = Callable[[Desired], tuple[bool, str]]


@dataclass
class _Builder:
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)


def make_plan(
    desired: Mapping[str, Desired],
    recorded: State,
    observed: Mapping[str, Observation] | None,
    *,
    project: str,
    replace_strategy: ReplaceStrategy,
    targets: Collection[str] = (),
    force_replace: Collection[str] = (),
    delete_reason: str = "not in the services file",
    capacities: Mapping[str, Capacity] | None = None,
) -> Plan:
    """Decide what apply must do. ``observed is None`` means refresh was off: trust state.

    ``capacities`` (per platform, read during refresh) puts a fit verdict on every create and
    replace; without them, and with refresh off, the verdict is "unknown"."""
    for name in [*targets, *force_replace]:
        if name not in desired and name not in recorded.services:
            raise ConfigError(f"no service named {name!r} in the services file or in state")
    in_scope = (lambda name: name in targets) if targets else (lambda name: True)
    out = _Builder()
    recorded_jobs = {r.job_id for r in recorded.services.values()}

    for name, want in desired.items():
        if in_scope(name):
            out.changes.append(
                _decide(
                    want, recorded.services.get(name), observed, name in force_replace, replace_strategy, out
                )
            )

    for name, record in recorded.services.items():
        if name not in desired and in_scope(name):
            if record.protect:
                out.protected.append(
                    f"service {name!r} is protected (protect: true) and would be deleted: {delete_reason}"
                )
            out.changes.append(Change(name, DELETE, (delete_reason,), record.platform, job_id=record.job_id))

    for job_id, obs in (observed or {}).items():
        if job_id in recorded_jobs or not in_scope(obs.service):
            continue
        if obs.lineage != recorded.lineage:
            out.warnings.append(
                f"workload {job_id} (service {obs.service!r}) carries project {project!r} but belongs to "
                f"another state (lineage {obs.lineage}); left alone"
            )
            continue
        platform = obs.platform or _platform_of(recorded, desired, obs)
        out.changes.append(
            Change(
                obs.service,
                DELETE,
                (
                    f"orphan: workload {job_id} is not in state (left by an interrupted apply?); status {obs.status}",
                ),
                platform,
                job_id=job_id,
                orphan=True,
            )
        )

    if out.protected:
        raise ProtectedError(out.protected[0], lines=out.protected)
    if capacities is not None or observed is None:
        _judge_fit(out, desired, recorded, capacities)
    return Plan(
        project=project,
        lineage=recorded.lineage,
        state_serial=recorded.serial,
        changes=tuple(out.changes),
        warnings=tuple(out.warnings),
        refreshed=observed is not None,
    )


def _judge_fit(
    out: _Builder,
    desired: Mapping[str, Desired],
    recorded: State,
    capacities: Mapping[str, Capacity] | None,
) -> None:
    """A fit verdict on every create and replace (engine.fit), from the capacities refresh read."""
    asks = [
        fit.Ask(
            c.service,
            c.platform,
            desired[c.service].spec.num_gpus,
            frees=c.job_id if c.action == REPLACE and not c.create_before_destroy else None,
        )
        for c in out.changes
        if c.action in (CREATE, REPLACE) and c.service in desired
    ]
    if not asks:
        return
    if capacities is None:
        why = Capacity.not_known("refresh was off: capacity not read")
        capacities = {a.platform: why for a in asks}
    stopped = [c.job_id for c in out.changes if c.action == DELETE and c.job_id]
    verdicts, warnings = fit.decide(asks, capacities, recorded, stopped)
    out.warnings.extend(warnings)
    out.changes = [
        replace(c, fit=verdicts[c.service].verdict, fit_detail=verdicts[c.service].detail)
        if c.action in (CREATE, REPLACE) and c.service in verdicts
        else c
        for c in out.changes
    ]


def _platform_of(recorded: State, desired: Mapping[str, Desired], obs: Observation) -> str:
    """Where an orphan runs when the observation does not say (observations built by hand)."""
    if obs.service in desired:
        return desired[obs.service].platform
    record = recorded.services.get(obs.service)
    return record.platform if record else "local-docker"


def _decide(
    want: Desired,
    record: ServiceRecord | None,
    observed: Mapping[str, Observation] | None,
    forced: bool,
    replace_strategy: ReplaceStrategy,
    out: _Builder,
) -> Change:
    if record is None:
        return Change(want.name, CREATE, (f"new service: {_what(want)} on {want.platform}",), want.platform)

    obs = observed.get(record.job_id) if observed is not None else _from_record(record)
    diff = (
        spec_reasons(_recorded_comparable(record), want.comparable())
        if record.spec_hash != want.spec_hash
        else []
    )
    if record.platform != want.platform:
        diff = [
            f"platform: {record.platform!r} → {want.platform!r}",
            *[d for d in diff if not d.startswith("platform:")],
        ]
    cbd, why = replace_strategy(want)

    def replace(*reasons: str) -> Change:
        if want.spec.protect:
            out.protected.append(
                f"service {want.name!r} is protected (protect: true) and would be replaced: {'; '.join(reasons)}"
            )
        order = "create before destroy" if cbd else f"destroy before create: {why}"
        return Change(
            want.name,
            REPLACE,
            (*reasons, order),
            want.platform,
            job_id=record.job_id,
            create_before_destroy=cbd,
        )

    if obs is None or obs.status == "missing":
        if record.status == "creating":
            gone = f"the previous apply was interrupted before {record.job_id} started"
        else:
            gone = f"workload {record.job_id} is gone (removed outside taoplan)"
        return Change(want.name, CREATE, (gone, *diff), want.platform, job_id=record.job_id)
    if record.status == "creating":
        return replace(f"the previous apply was interrupted while starting {record.job_id}", *diff)
    if obs.status == "failed":
        return replace(f"workload {record.job_id} failed: {obs.detail}", *diff)
    if obs.status == "exited":
        code = f" with code {obs.exit_code}" if obs.exit_code is not None else ""
        return replace(f"workload {record.job_id} exited{code}", *diff)
    if obs.spec_hash and obs.spec_hash != record.spec_hash:
        return replace(
            f"running workload has spec hash {obs.spec_hash}, state recorded {record.spec_hash}", *diff
        )
    if forced:
        return replace("forced by --replace", *diff)
    if diff:
        return replace(*diff)
    if record.status == "failed":
        return replace(f"last apply failed: {record.readiness or 'not ready'}")

    state_only = _state_only_changes(record, want)
    ready = record.status == "ready" and (obs.status in ("running", "ready"))
    reasons = tuple(state_only) + (() if ready else (f"waiting for readiness ({obs.detail or obs.status})",))
    return Change(
        want.name,
        NOOP,
        reasons,
        want.platform,
        job_id=record.job_id,
        await_ready=not ready,
        state_only=tuple(s.split(":", 1)[0] for s in state_only),
    )


def _from_record(record: ServiceRecord) -> Observation:
    status = {"creating": "missing", "exited": "exited", "missing": "missing"}.get(record.status, "running")
    return Observation(job_id=record.job_id, service=record.name, status=status, spec_hash=record.spec_hash)


def _recorded_comparable(record: ServiceRecord) -> dict[str, Any]:
    return {
        **record.spec,
        "image": record.image,
        "platform_settings": record.extra.get("platform_config", {}),
    }


def _state_only_changes(record: ServiceRecord, want: Desired) -> list[str]:
    out = []
    if record.protect != want.spec.protect:
        out.append(f"protect: {record.protect} → {want.spec.protect} (state only)")
    old_timeout = record.spec.get("readiness", {}).get("timeout")
    if old_timeout != want.spec.readiness.timeout:
        out.append(f"readiness.timeout: {old_timeout} → {want.spec.readiness.timeout} (state only)")
    return out


def spec_reasons(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human reasons for a replace, one per changed field, e.g. model_path: "a" → "b"."""
    from deepdiff import DeepDiff  # only when a spec changed: deepdiff is slow to import

    ignore = {"root['protect']", "root['readiness']"}
    diff = DeepDiff(old, new, verbose_level=2, exclude_paths=ignore)
    reasons: list[str] = []
    for path, change in diff.get("values_changed", {}).items():
        reasons.append(f"{_path(path)}: {_show(change['old_value'])} → {_show(change['new_value'])}")
    for path, change in diff.get("type_changes", {}).items():
        reasons.append(f"{_path(path)}: {_show(change['old_value'])} → {_show(change['new_value'])}")
    for path, value in diff.get("dictionary_item_added", {}).items():
        reasons.append(f"{_path(path)}: added {_show(value)}")
    for path, value in diff.get("dictionary_item_removed", {}).items():
        reasons.append(f"{_path(path)}: removed (was {_show(value)})")
    for kind in ("iterable_item_added", "iterable_item_removed"):
        for path, value in diff.get(kind, {}).items():
            verb = "added" if kind.endswith("added") else "removed"
            reasons.append(f"{_path(path).rsplit('.', 1)[0]}: {verb} {_show(value)}")
    return sorted(set(reasons)) or ["spec changed"]


def _path(deepdiff_path: str) -> str:
    parts = deepdiff_path.removeprefix("root").replace("']['", ".").replace("'][", ".").replace("][", ".")
    return parts.strip("[]'").replace("['", "").replace("']", "")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return repr(value) if not isinstance(value, (dict, list)) else str(value)


def _what(want: Desired) -> str:
    """The arch, or a server's type and the command it will run."""
    if want.spec.server is None:
        return str(want.spec.network_arch)
    import shlex

    from taoplan.spec import servers
    from taoplan.spec.references import load_references

    return f"server {want.spec.server.type}: {shlex.join(servers.argv(want.spec, load_references()))}"
